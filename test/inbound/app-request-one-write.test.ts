// A request whose body came with its head (HEADERS and DATA in one read of the caller's
// connection: a small JSON upload) reaches an HTTP/1.1 app in one write, one TCP segment, so the
// app is woken once, not once for the head and again for the body (the sidecar's own system
// calls per upload: 2.2 -> 1.3 writes in a wrk POST run). A body still to come does not hold the
// head back. Seen in the kernel's count of data segments the app's socket received (`ss -ti`,
// data_segs_in: the sidecar's app sockets have TCP_NODELAY, so each write is a segment) and by a
// raw TCP app; the caller is a raw HTTP/2 client over mutual TLS that sends HEADERS and DATA in
// one write.

import t from 'tap';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FLAG, FRAME, connectRawH2, frame, requestHeaders, statusOf } from '../helpers/raw-h2.js';
import { startInbound } from '../helpers/inbound-fixture.js';

const BODY = Buffer.from(JSON.stringify({ order: 42, items: Array.from({ length: 40 }, (_, i) => ({ sku: `sku-${i}`, qty: i })) }));

interface ReadCountingApp {
  readonly port: number;
  /** Per request, in order: how many reads its head and body took. */
  readonly readsPerRequest: number[];
  /** Bytes of the request being read (head only until its body comes). */
  pending(): string;
  close(): Promise<void>;
}

/** An HTTP/1.1 app on raw sockets: a request is whole once its head and Content-Length bytes came; it answers 200 "ok". */
async function startReadCountingApp(): Promise<ReadCountingApp> {
  const readsPerRequest: number[] = [];
  const sockets = new Set<net.Socket>();
  let current = '';
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let reads = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      current = buffered;
      reads++;
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, headEnd))?.[1] ?? 0);
        if (buffered.length < headEnd + 4 + length) return;
        buffered = buffered.slice(headEnd + 4 + length);
        current = buffered;
        readsPerRequest.push(reads);
        reads = buffered.length > 0 ? 1 : 0;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    readsPerRequest,
    pending: () => current,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Data segments the app's accepted sockets (local port `port`) have received, summed. */
function dataSegmentsIn(port: number): number {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  const counts = [...out.matchAll(/\bdata_segs_in:(\d+)/g)].map((m) => Number(m[1]));
  if (counts.length === 0) throw new Error(`ss shows no established socket on port ${port}: ${out}`);
  return counts.reduce((a, b) => a + b, 0);
}

const post = (length: number): Array<[string, string]> => [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', 'orders'],
  [':path', '/orders'],
  ['content-type', 'application/json'],
  ['content-length', String(length)],
];

/** The read-counting app behind an inbound, and a raw HTTP/2 caller connected to it; all closed at the test's end. */
async function appBehindInbound(t: { teardown(fn: () => unknown): void }) {
  const app = await startReadCountingApp();
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  return { app, raw };
}

t.test('an upload that came with its head reaches the app in one write, every time', async (t) => {
  const { app, raw } = await appBehindInbound(t);
  const REQUESTS = 30;
  for (let i = 0; i < REQUESTS; i++) {
    const id = 1 + 2 * i;
    raw.write(Buffer.concat([requestHeaders(id, post(BODY.length), false), frame(FRAME.DATA, FLAG.END_STREAM, id, BODY)]));
    const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === id, `the answer to request ${i + 1}`);
    t.equal(statusOf(head), 200, `request ${i + 1} answered`);
  }
  t.equal(app.readsPerRequest.length, REQUESTS, 'the app got every request');
  t.equal(dataSegmentsIn(app.port), REQUESTS, 'one data segment a request: head and body in one write');
});

t.test('a body still to come does not hold the head back', async (t) => {
  const { app, raw } = await appBehindInbound(t);
  raw.write(requestHeaders(1, post(BODY.length), false));
  // the head alone, before any byte of the body was sent
  const until = Date.now() + 5000;
  while (!app.pending().includes('\r\n\r\n') && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
  t.match(app.pending(), /^POST \/orders HTTP\/1\.1\r\n[\s\S]*\r\n\r\n$/, 'the app has the head and nothing more');
  raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1, BODY));
  const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the answer');
  t.equal(statusOf(head), 200);
  t.same(app.readsPerRequest, [2], 'head and body in two reads, as they came');
  t.equal(dataSegmentsIn(app.port), 2, 'and two segments');
});
