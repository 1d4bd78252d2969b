// A request head that does not come whole in time gets the admin port's JSON 408, also when it
// trickles in a byte at a time (the idle sweep alone never closes such a connection) and also
// as the second request on a kept-alive connection; a connection silent after its answer gets
// no 408 (the idle timeout closes it), nor does one whose body is still coming after its answer
// (its bytes were taken for the next head: a second, unrequested answer 10 s later). Node checks headersTimeout only every 30 s on this
// server (a shorter check would wake every idle sidecar), so the admin's idle sweep enforces
// it. Raw sockets against a real admin server in this process, with a short head timeout.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { ADMIN_HEADERS_TIMEOUT_MS, startAdminServer } from '../../src/admin/server.js';
import { bareAdminState } from '../helpers/admin-state.js';

const HEAD_MS = 1_500;
/** The sweep sees a head's first bytes up to a second late and fires up to a second late; plus scheduling on a loaded machine. */
const LATE_MS = 2 * 1_000 + 3_000;

const state = bareAdminState();

/** A raw connection whose received bytes are collected as text. */
async function connect(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'connect');
  return { socket, received: () => text, closed };
}

/** Resolves with the time `received()` first matched, or rejects after `withinMs`. */
function waitFor(received: () => string, pattern: RegExp, withinMs: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      if (pattern.test(received())) {
        clearInterval(poll);
        resolve(Date.now());
      } else if (Date.now() - start > withinMs) {
        clearInterval(poll);
        reject(new Error(`no ${String(pattern)} within ${withinMs} ms; got ${JSON.stringify(received())}`));
      }
    }, 20);
  });
}

t.test('the default is 10 s', async (t) => {
  t.equal(ADMIN_HEADERS_TIMEOUT_MS, 10_000);
});

t.test('a head not whole in time gets 408, trickled or after a first answer; a silent kept-alive connection does not', async (t) => {
  // a long idle timeout: only the head timeout can act within this test
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { idleTimeoutMs: 60_000, headersTimeoutMs: HEAD_MS });
  t.teardown(() => admin.close());

  // a first request answered, then nothing: kept alive, no 408 (silent longer than the others wait)
  const silent = await connect(admin.port);
  silent.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(silent.received, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/, 5_000);
  const silentAnswer = silent.received();

  // 1: a head trickled a byte every 200 ms, never finished (the loop is bounded: 100 bytes at most)
  const trickle = await connect(admin.port);
  const trickleStart = Date.now();
  trickle.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
  let sent = 0;
  const drip = setInterval(() => {
    if (sent++ >= 100 || trickle.socket.destroyed) clearInterval(drip);
    else trickle.socket.write('a');
  }, 200);
  t.teardown(() => clearInterval(drip));

  // 2: a first request answered, then the next head left unfinished
  const second = await connect(admin.port);
  second.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(second.received, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/, 5_000);
  const secondStart = Date.now();
  second.socket.write('GET /ready HTTP/1.1\r\nHost: loc');

  const trickled = await waitFor(trickle.received, /^HTTP\/1\.1 408 /, HEAD_MS + LATE_MS);
  t.ok(trickled - trickleStart >= HEAD_MS - 100, `trickled head: 408 after ${trickled - trickleStart} ms, not before the ${HEAD_MS} ms timeout`);
  t.match(trickle.received(), /"error":"request_timeout","message":"the request did not arrive in time/, 'the JSON error body of every admin refusal');
  await trickle.closed;
  t.pass('and the connection is closed');

  const cutSecond = await waitFor(second.received, /HTTP\/1\.1 408 /, HEAD_MS + LATE_MS);
  t.ok(cutSecond - secondStart >= HEAD_MS - 100, `second head on a kept-alive connection: 408 after ${cutSecond - secondStart} ms`);
  await second.closed;

  t.equal(silent.received(), silentAnswer, 'the connection silent after its answer got nothing more (no 408)');
  t.notOk(silent.socket.destroyed, 'and is still open');
  silent.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(() => silent.received().slice(silentAnswer.length), /^HTTP\/1\.1 200 /, 5_000);
  t.pass('and answers its next request');
  silent.socket.destroy();
});

t.test('a body still coming after its answer is not taken for the next head: one answer per request', async (t) => {
  // a short head timeout, so a body that outlasts it (and the sweep's second of lateness, twice) stays short
  const headMs = 500;
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { idleTimeoutMs: 60_000, headersTimeoutMs: headMs });
  t.teardown(() => admin.close());
  const slow = await connect(admin.port);
  const chunks = 30;
  slow.socket.write(`GET /ready HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${chunks * 100}\r\n\r\n`);
  await waitFor(slow.received, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n\{"status":"ready"\}$/, 5_000);
  const answered = Date.now();
  // the body goes on for 3 s after the answer, 100 bytes every 100 ms (the loop is bounded by `chunks`)
  await new Promise<void>((resolve) => {
    let sent = 0;
    const drip = setInterval(() => {
      if (slow.socket.destroyed || sent++ >= chunks) {
        clearInterval(drip);
        resolve();
      } else slow.socket.write('x'.repeat(100));
    }, 100);
  });
  t.ok(Date.now() - answered >= headMs + 2 * 1_000, 'the body outlasted the head timeout and the sweep lateness');
  t.notMatch(slow.received(), /408/, 'no 408 while the answered request\'s body came');
  t.notOk(slow.socket.destroyed, 'and the connection is open');
  const first = slow.received();
  slow.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(() => slow.received().slice(first.length), /^HTTP\/1\.1 200 [\s\S]*\{"status":"ok"\}$/, 5_000);
  t.pass('the next request on it gets its own answer');
  t.equal(slow.received().match(/HTTP\/1\.1 /g)?.length, 2, 'two requests, two answers');
  slow.socket.destroy();
});
