// A pooled connection to the app that breaks under a request (ECONNRESET on a reused socket):
// the request may or may not have reached the app, so the inbound sends it once more only when
// that is safe (an idempotent method, or an Idempotency-Key) and otherwise answers 502
// upstream_reset. The app here is raw TCP: it reads the second request on each connection,
// records it, and resets the connection instead of answering.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';

interface Received {
  readonly line: string;
  readonly connection: number;
}

async function startResettingApp(): Promise<{ port: number; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  let connections = 0;
  const server = net.createServer((socket) => {
    const connection = ++connections;
    let served = 0;
    let buffered = '';
    // the first /reset- request on a connection that has answered before is never answered
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const line = buffered.slice(0, buffered.indexOf('\r\n'));
        buffered = buffered.slice(end + 4); // every request here is bodiless
        served++;
        received.push({ line, connection });
        if (served > 1 && line.includes(' /reset-')) {
          socket.resetAndDestroy();
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

t.test('a reset on a reused app connection', async (t) => {
  const app = await startResettingApp();
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port }, limits: { maxAppSockets: 1 } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();

  /** A fresh pooled connection, then the request under test as its second request. */
  async function onReusedConnection(method: string, path: string, headers: Record<string, string> = {}) {
    t.equal((await h1Request(fx.port, tlsOptions, { path: '/warm' })).status, 200);
    const before = app.received.length;
    const res = await h1Request(fx.port, tlsOptions, { method, path, headers });
    return { res, lines: app.received.slice(before).map((r) => r.line) };
  }

  t.test('POST without a body is not sent twice: 502 upstream_reset', async (t) => {
    const { res, lines } = await onReusedConnection('POST', '/reset-charge');
    t.equal(res.status, 502);
    t.equal(JSON.parse(res.body).error, 'upstream_reset');
    t.same(lines, ['POST /reset-charge HTTP/1.1'], 'the app saw the POST exactly once');
  });

  t.test('PATCH is not sent twice either', async (t) => {
    const { res, lines } = await onReusedConnection('PATCH', '/reset-patch');
    t.equal(res.status, 502);
    t.same(lines, ['PATCH /reset-patch HTTP/1.1']);
  });

  t.test('GET is sent once more, on a new connection', async (t) => {
    const { res, lines } = await onReusedConnection('GET', '/reset-read');
    t.equal(res.status, 200);
    t.same(lines, ['GET /reset-read HTTP/1.1', 'GET /reset-read HTTP/1.1']);
  });

  t.test('POST with an Idempotency-Key is sent once more', async (t) => {
    const { res, lines } = await onReusedConnection('POST', '/reset-keyed', { 'idempotency-key': 'k-1' });
    t.equal(res.status, 200);
    t.same(lines, ['POST /reset-keyed HTTP/1.1', 'POST /reset-keyed HTTP/1.1']);
  });
});
