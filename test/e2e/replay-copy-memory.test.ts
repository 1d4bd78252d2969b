// A request body sent in 1-byte chunks, 64,000 of them, under the 64 KiB the outbound keeps
// for a retry: the copy kept every chunk as it came, a view of the read that carried it, and
// held about 13 MB a request (a review of memory bounds: 200 such uploads took a sidecar past
// 2 GB). Now copied into one buffer as they go by (replay-copy.ts; the inbound's copy for an h2c
// app's refused stream too). Real sidecars, a real CA, an h2c app that takes the body and never
// answers (so the copies are held); each sidecar's live heap from a heap snapshot.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
const UPLOADS = 12;
const BODY = 64_000;


t.test('uploads in 1-byte chunks: the copies kept for a replay are the bytes, not the chunks', async (t) => {
  // the app: reads every body, answers none
  let bodiesDone = 0;
  const held: http2.ServerHttp2Stream[] = [];
  const app = http2.createServer();
  app.on('stream', (stream) => {
    held.push(stream);
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.on('end', () => (bodiesDone += 1));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => {
    for (const stream of held) stream.destroy();
    app.close();
  });
  const snapshots = t.testdir();
  const back = await startSidecar(mesh.ca, { service: 'back', inbound: { app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}`, timeout: '60s' } });
  const front = await startSidecar(mesh.ca, { service: 'front', upstreams: [{ name: 'back', endpoints: [`127.0.0.1:${back.inboundPort}`], identity: 'spiffe://mesh.local/svc/back', timeout: '60s' }], nodeArgs: snapshotOnSignal(snapshots) });
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all([front.stop(), back.stop()]);
  });
  const chunked = Buffer.from('1\r\nx\r\n'.repeat(BODY) + '0\r\n\r\n', 'latin1');
  for (let i = 0; i < UPLOADS; i++) {
    const socket = net.connect(front.outboundPort, '127.0.0.1');
    socket.on('error', () => {});
    sockets.push(socket);
    await once(socket, 'connect');
    socket.write('POST /sink HTTP/1.1\r\nHost: back\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.write(chunked);
  }
  // every body has reached the app: both sidecars hold their copies, no answer will come
  await waitFor(async () => bodiesDone === UPLOADS, 30_000, 'the app has every body');
  // the live heap (what a GC leaves): the heap in use, read from /metrics before, counted the
  // garbage of 768,000 chunks too (6-31 MB for 6 uploads, 68 MB for 12 once the outbound's
  // sessions ran over the handshake gate's JS stream). The copies are 12 x 64 KB; the views held
  // 13 MB an upload
  const live = await liveHeapOf(front, snapshots);
  t.comment(`the outbound's live heap with ${UPLOADS} uploads held: ${live.toFixed(1)} MB`);
  t.ok(live < 40, `live heap ${live.toFixed(1)} MB (under 40)`);
});

/** The sidecar's node options that have it write a heap snapshot into `dir` at SIGUSR2. */
function snapshotOnSignal(dir: string): string[] {
  return ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];
}

/** The live heap of a sidecar started with snapshotOnSignal(dir), in MB: a snapshot taken now. */
async function liveHeapOf(sidecar: RunningSidecar, dir: string): Promise<number> {
  sidecar.process?.child.kill('SIGUSR2');
  let file: string | undefined;
  await waitFor(async () => {
    file = (await readdir(dir)).find((name) => name.endsWith('.heapsnapshot'));
    if (file === undefined) return false;
    // written whole once it parses (the file grows while it is written)
    try {
      liveHeapMb(await readFile(join(dir, file), 'utf8'));
      return true;
    } catch {
      return false;
    }
  }, 30_000, 'the heap snapshot');
  return liveHeapMb(await readFile(join(dir, file as string), 'utf8'));
}

/** The live heap of a heap snapshot (every node's self size: what a GC left). */
function liveHeapMb(snapshotText: string): number {
  const snapshot = JSON.parse(snapshotText) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const self = fields.indexOf('self_size');
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) total += snapshot.nodes[i + self] as number;
  return total / 1e6;
}

// the inbound's copy for an h2c app's refused stream, from callers over mutual TLS and HTTP/1.1
// sending 1-byte chunks (through an outbound they arrive in DATA frames of many bytes): its
// live heap, from a heap snapshot (what a GC leaves: the heap in use before one is mostly
// garbage here), 85.9 MB with six such uploads held before, 11.6 MB after
t.test("the inbound's copy for an h2c app: live heap with 1-byte-chunk uploads held", async (t) => {
  let bodiesDone = 0;
  const held: http2.ServerHttp2Stream[] = [];
  const app = http2.createServer();
  app.on('stream', (stream) => {
    held.push(stream);
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.on('end', () => (bodiesDone += 1));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const snapshots = t.testdir();
  const back = await startSidecar(mesh.ca, { service: 'back', inbound: { app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}`, timeout: '60s' }, nodeArgs: snapshotOnSignal(snapshots) });
  const sockets: tls.TLSSocket[] = [];
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    for (const stream of held) stream.destroy();
    app.close();
    await back.stop();
  });
  const caller = await mesh.ca.issue('frontend');
  const chunked = Buffer.from('1\r\nx\r\n'.repeat(BODY) + '0\r\n\r\n', 'latin1');
  for (let i = 0; i < 6; i++) {
    const socket = tls.connect({ host: '127.0.0.1', port: back.inboundPort, cert: caller.cert, key: caller.key, ca: caller.bundle, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined });
    socket.on('error', () => {});
    sockets.push(socket);
    await once(socket, 'secureConnect');
    socket.write('POST /sink HTTP/1.1\r\nHost: back\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.write(chunked);
  }
  await waitFor(async () => bodiesDone === 6, 30_000, 'the app has every body');
  const live = await liveHeapOf(back, snapshots);
  t.comment(`the inbound's live heap with 6 uploads held: ${live.toFixed(1)} MB`);
  t.ok(live < 40, `live heap ${live.toFixed(1)} MB (under 40)`);
});
