// An answer the outbound gives while the app is still uploading, on a connection that then
// closes (503 to a request that said `Connection: close`, 413 over an OpenAPI maxBodySize, 501
// to a body in a coding it cannot read, 431 for a head over the limit), reaches an app that sends its whole request before it reads (as
// Python's http.client, urllib and requests do): the sidecar half-closes and reads and drops
// what still comes for a bounded while (src/http/lingering-close.ts), where closing at once made
// the kernel answer the app's next bytes with a reset, and the app's write failed (EPIPE,
// ECONNRESET) before it read anything. The bounds hold against an app that never stops.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { LINGER_IDLE_MS, LINGER_MAX_BYTES, LINGER_MS } from '../../src/http/lingering-close.js';
import { makePki, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { sendAllThenRead } from '../helpers/raw-http.js';

const MB = 1024 * 1024;
const TRIES = 20;
// more than the kernel's buffers of both sockets hold, less than the linger's byte bound
const UPLOAD = 8 * MB;

async function outboundWithEarlyAnswers(t: Tap.Test) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  // 'dead': an endpoint that refuses connections, answered 503 upstream_unavailable
  const fx = await startOutbound(pki, [
    { name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] },
    { name: 'plain', endpoints: [`127.0.0.1:${upstream.port}`] },
    { name: 'dead', endpoints: ['127.0.0.1:1'] },
  ]);
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec: resolve('config/orders.openapi.yaml'), mode: 'enforce', maxBodySize: 512, maxBuffered: 4096 })]]));
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  return { fx, upstream };
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

t.test('an early answer that closes the connection reaches an app still sending its request', async (t) => {
  const { fx } = await outboundWithEarlyAnswers(t);
  const cases = [
    ['503 to a Connection: close upload', `POST /x HTTP/1.1\r\nhost: dead\r\nconnection: close\r\ncontent-length: ${UPLOAD}\r\n\r\n`, 'HTTP/1.1 503 Service Unavailable'],
    ['413 over maxBodySize', `POST /orders HTTP/1.1\r\nhost: payments\r\ncontent-type: application/json\r\nidempotency-key: idem-0001\r\ncontent-length: ${UPLOAD}\r\n\r\n`, 'HTTP/1.1 413 Payload Too Large'],
    ['501 to a body in an unknown coding', 'POST /x HTTP/1.1\r\nhost: plain\r\ntransfer-encoding: gzip, chunked\r\n\r\n', 'HTTP/1.1 501 Not Implemented'],
    ['431 to a head still coming', 'GET /x HTTP/1.1\r\nhost: payments\r\nx-big: ', 'HTTP/1.1 431 Request Header Fields Too Large'],
  ] as const;
  for (const [what, head, status] of cases) {
    const outcomes: string[] = [];
    for (let i = 0; i < TRIES; i++) outcomes.push(await sendAllThenRead(net.connect({ port: fx.port, host: '127.0.0.1', allowHalfOpen: true }), 'connect', head, UPLOAD));
    t.same(tally(outcomes), { [status]: TRIES }, `${what}: ${TRIES} of ${TRIES} read it`);
  }
});

/** An app connection answered 503 with Connection: close; resolves once the status line is read. */
async function answeredAndClosing(port: number): Promise<{ socket: net.Socket; text: () => string; closed: Promise<unknown> }> {
  // half-open allowed: it goes on sending after our FIN, as a client that reads only later does
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.write(`POST /x HTTP/1.1\r\nhost: dead\r\nconnection: close\r\ncontent-length: ${100 * MB}\r\n\r\n`);
  await waitUntil(() => text.startsWith('HTTP/1.1 503'), 'the 503');
  return { socket, text: () => text, closed };
}

t.test('the linger is bounded: an app that never stops sending, or trickles, or goes quiet, is cut', async (t) => {
  const { fx, upstream } = await outboundWithEarlyAnswers(t);

  // as fast as it can: cut by the byte bound
  const fast = await answeredAndClosing(fx.port);
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const pump = () => {
    while (!fast.socket.destroyed && fast.socket.write(chunk)) written += chunk.length;
  };
  fast.socket.on('drain', pump);
  const fastStart = Date.now();
  pump();
  await fast.closed;
  t.ok(written <= LINGER_MAX_BYTES + 16 * MB, `a flood: cut after ${Math.round(written / MB)} MiB (bound ${LINGER_MAX_BYTES / MB} MiB and the kernel's buffers)`);
  t.ok(Date.now() - fastStart < LINGER_MS + 1000, `a flood: cut within ${Date.now() - fastStart} ms`);

  // a byte every 100 ms: cut by the time bound
  const slow = await answeredAndClosing(fx.port);
  const slowStart = Date.now();
  const trickle = setInterval(() => slow.socket.write('c'), 100);
  await slow.closed;
  clearInterval(trickle);
  const slowMs = Date.now() - slowStart;
  t.ok(slowMs >= LINGER_MS - 200 && slowMs < LINGER_MS + 1000, `a trickle: cut after ${slowMs} ms (bound ${LINGER_MS} ms)`);

  // sends nothing more and keeps its side open: cut once quiet for LINGER_IDLE_MS (its half-open
  // socket hears nothing of it: the outbound's count of app connections says so); a request it
  // sends meanwhile is read as bytes to drop, never forwarded
  const appConnections = () => (fx.outbound as unknown as { listener: { connections: number } }).listener.connections;
  const quiet = await answeredAndClosing(fx.port);
  const before = upstream.requests;
  quiet.socket.write('GET /echo HTTP/1.1\r\nhost: plain\r\n\r\n');
  const quietStart = Date.now();
  await waitUntil(() => appConnections() === 0, 'the quiet connection closed', LINGER_MS + 1000);
  const quietMs = Date.now() - quietStart;
  t.ok(quietMs >= LINGER_IDLE_MS - 200 && quietMs < LINGER_IDLE_MS + 1000, `quiet: cut after ${quietMs} ms (bound ${LINGER_IDLE_MS} ms)`);
  t.equal(upstream.requests, before, 'the request sent after the answer went nowhere');
  t.match(quiet.text(), /^HTTP\/1\.1 503 [^]*\r\n\r\n\{[^]*\}$/, 'and nothing was answered after the 503');
});
