// Our send side judged by a strict independent peer: Python's h2 (python3-h2) over mutual TLS
// with certificates from the test CA (test/h2/fixtures/h2send-peer.py). It refuses a frame that
// relies on SETTINGS we have not acknowledged yet, a head above the header list size it
// announced, a stream above its concurrency limit: each is a connection error there, which
// would take every other stream of the connection with it.

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectOurClient, ourRequest, pythonWithH2, readBody, runPythonPeer, startOurServer, tlsPair, type PeerEvent } from './fixtures/h2-helpers.js';

const PEER = fileURLToPath(new URL('./fixtures/h2send-peer.py', import.meta.url));
const PYTHON = pythonWithH2();
if (PYTHON === undefined) {
  t.plan(0, 'python3-h2 is not installed (make tools)');
  process.exit(0);
}

type Event = PeerEvent;

const certDir = mkdtempSync(join(tmpdir(), 'h2send-'));
t.teardown(() => rmSync(certDir, { recursive: true, force: true }));
const m = await tlsPair();
writeFileSync(join(certDir, 'ca.pem'), m.pki.bundlePem);
writeFileSync(join(certDir, 'srv.crt'), m.server.cert as string);
writeFileSync(join(certDir, 'srv.key'), m.server.key as string);
writeFileSync(join(certDir, 'cli.crt'), m.client.cert as string);
writeFileSync(join(certDir, 'cli.key'), m.client.key as string);

const runPeer = (args: string[], onLine?: (e: Event) => void) => runPythonPeer(PYTHON!, PEER, args, onLine);

/** /body?n=N: N bytes; /hdr?n=N: a response head with an N-byte field; /trl?n=N: trailers with one. */
function handler(stream: H2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => {});
  const [path, query] = String(headers[':path']).split('?n=');
  const n = Number(query ?? 0);
  if (path === '/body') {
    stream.respond({ ':status': 200 });
    stream.end(Buffer.alloc(n, 0x61));
  } else if (path === '/hdr') {
    stream.respond({ ':status': 200, 'x-big': 'h'.repeat(n) });
    stream.end('head');
  } else {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-big': 't'.repeat(n) }));
    stream.end('trailed');
  }
}

t.test('SETTINGS raising the window and frame size while a stream is blocked: our ACK precedes the DATA relying on them', async (t) => {
  const server = await startOurServer(handler, { tls: true });
  t.teardown(server.close);
  const ev = await runPeer(['client', String(server.port), certDir, 'raise']);
  t.notOk(ev.find((e) => e.peer_error), `h2 accepted every frame: ${JSON.stringify(ev.find((e) => e.peer_error))}`);
  t.same((ev.find((e) => e.order)?.order as string[]).slice(0, 2), ['ACK', 'DATA'], 'after the new SETTINGS: our ACK, then DATA');
  t.ok(((ev.find((e) => e.order)?.largest as number) ?? 0) > 16384, 'DATA then used the larger frame size');
  t.ok(ev.some((e) => e.ended === 1 && e.body === 400000), 'the whole body arrived');
});

t.test("server: a response head or trailers above the peer's SETTINGS_MAX_HEADER_LIST_SIZE never go out; other streams unaffected", async (t) => {
  const server = await startOurServer(handler, { tls: true });
  t.teardown(server.close);
  const ev = await runPeer(['client', String(server.port), certDir, 'mhls']);
  t.notOk(ev.find((e) => e.peer_error), `h2 accepted every frame: ${JSON.stringify(ev.find((e) => e.peer_error))}`);
  t.ok(ev.some((e) => e.status === '200' && e.stream === 1) && ev.some((e) => e.ended === 1), 'stream 1 (small head) answered');
  t.ok(ev.some((e) => e.reset === 3 && e.code === 2), 'stream 3: the oversized head reset the stream (INTERNAL_ERROR), as nghttp2 does');
  t.notOk(ev.some((e) => e.stream === 3 && e.status), 'no head went out on stream 3');
  t.ok(ev.some((e) => e.reset === 5 && e.code === 2), 'stream 5: the oversized trailers reset the stream (INTERNAL_ERROR)');
  t.ok(ev.some((e) => e.status === '200' && e.stream === 5), 'stream 5: its head went out before');
  t.ok(ev.some((e) => e.status === '200' && e.stream === 7) && ev.some((e) => e.ended === 7), 'stream 7 (small head) answered');
  t.ok(ev.some((e) => e.alive === true), 'the connection still answers PING');
  t.same(server.observer.closed.filter((c) => c.reason !== 'normal'), [], 'our server ended no connection with an error');
});

t.test("client: request() refuses a head above the peer's header list size and a stream above its concurrency limit; the session lives on", async (t) => {
  let port = 0;
  let portSeen: () => void = () => {};
  const seen = new Promise<void>((r) => (portSeen = r));
  const peer = runPeer(['server', certDir, 'limits'], (e) => {
    if (typeof e.port === 'number') {
      port = e.port;
      portSeen();
    }
  });
  await seen;
  const conn = await connectOurClient(port, { tls: true });
  t.equal(conn.remoteSettings.maxHeaderListSize, 4096, "the peer's limits arrived");
  t.equal(conn.remoteSettings.maxConcurrentStreams, 2);
  // stream 1 in flight (its body not ended) while the oversized head is refused
  const a = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': '/a' });
  const aBody = readBody(a);
  const big = { ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': '/big', 'x-big': 'b'.repeat(8000) };
  // 8,207 bytes by RFC 7541 (name + value + 32 per field)
  t.throws(() => conn.request(big, { endStream: true }), { code: 'ERR_H2_HEADER_LIST_TOO_LARGE', size: 8207, limit: 4096 }, 'refused with a stable error');
  t.equal(conn.nextStreamId, 3, 'no stream id was taken');
  // two streams open: a third is refused locally, never sent
  const b = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': '/b' });
  const bBody = readBody(b);
  t.throws(() => conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': '/c' }, { endStream: true }), { code: 'ERR_H2_STREAM_LIMIT' }, 'a third concurrent stream refused');
  t.equal(conn.nextStreamId, 5, 'no stream id was taken');
  a.end('x');
  b.end('y');
  t.equal((await aBody).toString(), 'ok', 'stream 1 completes');
  t.equal((await bBody).toString(), 'ok', 'stream 3 completes');
  const again = await ourRequest(conn, { ':path': '/after' });
  t.equal(again.headers[':status'], '200', 'a request after them goes through');
  conn.close();
  const ev = await peer;
  t.notOk(ev.find((e) => e.failed === true), `h2 accepted every frame: ${JSON.stringify(ev)}`);
  t.same(
    ev.filter((e) => e.request).map((e) => e.request),
    ['/a', '/b', '/after'],
    'the peer saw only the requests within its limits',
  );
});
