// The outbound listener tells HTTP/1.1 from h2c by a connection's first bytes; until it can
// tell, neither server has the connection and none of their timeouts apply. A connection that
// sends nothing, or part of the h2c preface, is closed headersTimeoutMs after it opened (a
// short one here); one that sends a request in time is served and kept (keep-alive) past it.
// Raw TCP sockets; no upstream is reached (the one configured refuses: 503).

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { makePki, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { parseResponse } from '../helpers/raw-http.js';

const TIMEOUT_MS = 500;
/** Scheduling on a loaded 2-core machine, on top of each bound. */
const SLACK_MS = 3_000;

/** Ms from `since` until the server closes `socket` (read to its end), or undefined after `boundMs`. */
function closedWithin(socket: net.Socket, since: number, boundMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), since + boundMs - Date.now());
    socket.resume();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** Writes one request on `socket` and reads its response's status (0: closed first). */
function ask(socket: net.Socket): Promise<number> {
  let received = Buffer.alloc(0);
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseResponse(received, false);
      if (parsed) {
        socket.off('data', onData).off('close', onClose);
        resolve(parsed.status);
      }
    };
    const onClose = () => resolve(0);
    socket.on('data', onData).once('close', onClose);
    if (socket.destroyed) resolve(0);
    else socket.write('GET /x HTTP/1.1\r\nHost: payments\r\n\r\n');
  });
}

t.test('a connection that never says which protocol it speaks is closed; one that does is kept', async (t) => {
  const pki = await makePki(TD);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['127.0.0.1:9'] }], { headersTimeoutMs: TIMEOUT_MS });
  t.teardown(() => fx.close());

  const opened = Date.now();
  const silent = await connect(fx.port);
  const partial = await connect(fx.port);
  const served = await connect(fx.port);
  t.teardown(() => [silent, partial, served].forEach((s) => s.destroy()));
  partial.write('PRI * HTTP/2.0\r\n'); // the first half of the h2c preface
  t.equal(await ask(served), 503, 'a request sent at once is answered (the upstream refuses)');

  const [silentAfter, partialAfter, servedAfter] = await Promise.all([
    closedWithin(silent, opened, TIMEOUT_MS + SLACK_MS),
    closedWithin(partial, opened, TIMEOUT_MS + SLACK_MS),
    closedWithin(served, opened, 3 * TIMEOUT_MS),
  ]);
  t.type(silentAfter, 'number', `a connection that sends nothing is closed (${String(silentAfter)} ms)`);
  t.type(partialAfter, 'number', `one that sends half the h2c preface is closed (${String(partialAfter)} ms)`);
  t.ok((silentAfter ?? 0) >= TIMEOUT_MS - 200, 'not before the timeout');
  t.equal(servedAfter, undefined, `the one that sent a request is still open ${3 * TIMEOUT_MS} ms on: the timer ended with the first bytes`);
  t.equal(await ask(served), 503, 'and answers its next request');
});
