// A pooled h2c session to the app that Node's client ended without a word: on a compression
// error from the app (here an HPACK block naming index 0; in the field, a header over 64 KiB)
// it sends GOAWAY itself but neither closes the session nor emits anything, and every stream
// on it hung to the timeout or was refused, for as long as the app kept the connection open:
// the app was unreachable until it restarted. Now the session is dropped when it refuses a
// stream with no GOAWAY from the app and then leaves a PING unanswered, or when a stream times
// out and a PING goes unanswered; the next request opens a fresh one meanwhile. The app is a
// raw TCP server (the broken first connection) in front of Node's http2 server (every later
// one). Both codecs on the caller's side.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { ERROR, FLAG, FRAME, frame, settingsFrame, type Frame } from '../helpers/raw-h2.js';

const PREFACE_LENGTH = 24;

/**
 * The app's side of one raw h2c connection: our SETTINGS first, then every frame of the
 * client's handed to `onFrame` (the preface skipped), with `send` for raw frames.
 */
function speakH2c(socket: net.Socket, onFrame: (f: Frame, send: (bytes: Buffer) => void) => void): void {
  const send = (bytes: Buffer) => void (socket.writable && socket.write(bytes));
  send(settingsFrame());
  let buffer = Buffer.alloc(0);
  let prefaceRead = false;
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (!prefaceRead) {
      if (buffer.length < PREFACE_LENGTH) return;
      buffer = buffer.subarray(PREFACE_LENGTH);
      prefaceRead = true;
    }
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) return;
      const f: Frame = { type: buffer[3] as number, flags: buffer[4] as number, streamId: buffer.readUInt32BE(5) & 0x7fffffff, payload: buffer.subarray(9, 9 + length) };
      buffer = buffer.subarray(9 + length);
      onFrame(f, send);
    }
  });
}

/**
 * The app: its first connection answers every request with a broken HPACK block (`hpack`), or
 * only SETTINGS and then nothing at all, not even a PING's ACK (`silent`: a hung app); later
 * ones are a real h2c server.
 */
async function brokenThenWell(mode: 'hpack' | 'silent' | 'big-trailers'): Promise<{ port: number; broken: () => number; close: () => Promise<void> }> {
  const good = http2.createServer();
  good.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.end('well');
  });
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (++connections > 1) {
      good.emit('connection', socket);
      return;
    }
    speakH2c(socket, (f, send) => {
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) send(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      // a response head whose HPACK block names index 0: a COMPRESSION_ERROR to the client
      else if (f.type === FRAME.HEADERS && mode === 'hpack') send(frame(FRAME.HEADERS, FLAG.END_HEADERS, f.streamId, Buffer.from([0x80])));
      // its first stream: 200 and a body, then trailers of 1,500 fields in one frame (~58 KB):
      // Node's client ends the session without a word, and sends nothing more on it
      else if (f.type === FRAME.HEADERS && mode === 'big-trailers' && f.streamId === 1) {
        send(frame(FRAME.HEADERS, FLAG.END_HEADERS, f.streamId, Buffer.from([0x88])));
        send(frame(FRAME.DATA, 0, f.streamId, Buffer.from('body')));
        const fields = Array.from({ length: 1500 }, (_, i) => Buffer.concat([Buffer.from([0x00, `x-t${i}`.length]), Buffer.from(`x-t${i}`), Buffer.from([30]), Buffer.alloc(30, 0x76)]));
        send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, f.streamId, Buffer.concat(fields)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    broken: () => Math.min(connections, 1),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: a session Node's client ended silently is dropped; the app is reachable again`, async (t) => {
    const app = await brokenThenWell('hpack');
    t.teardown(() => app.close());
    const fx = await startInbound({ codec, timeoutMs: 300, externalApp: { protocol: 'h2c', port: app.port } });
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    const statuses: number[] = [];
    const started = Date.now();
    // bounded: at most 12 requests, each answered within the 300 ms timeout
    for (let i = 0; i < 12 && statuses.at(-1) !== 200; i++) {
      statuses.push((await h2Request(caller, { ':path': `/r${i}` })).status);
    }
    t.equal(statuses.at(-1), 200, `answered again (statuses ${statuses.join(', ')} in ${Date.now() - started} ms)`);
    t.equal(app.broken(), 1, 'the broken connection was the first');
  });
}

t.test('a session that stops answering (a request times out, then a PING goes unanswered for appPingTimeoutMs) is dropped', async (t) => {
  const app = await brokenThenWell('silent');
  t.teardown(() => app.close());
  const fx = await startInbound({ timeoutMs: 300, limits: { appPingTimeoutMs: 1000 }, externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  const statuses: number[] = [];
  const started = Date.now();
  // bounded: at most 15 requests of at most 300 ms each; the probe gives up after 1 s
  for (let i = 0; i < 15 && statuses.at(-1) !== 200; i++) statuses.push((await h2Request(caller, { ':path': `/r${i}` })).status);
  const took = Date.now() - started;
  t.equal(statuses.at(-1), 200, `answered again (statuses ${statuses.join(', ')} in ${took} ms)`);
  t.ok(took >= 1000, 'not before the PING had its second');
});

t.test("an answer whose trailers make Node's client end the session (1,500 fields in one frame): the next request's timeout drops it, and later requests are answered", async (t) => {
  // a review saw requests wait out their timeout on such a session for good, with one
  // REFUSED_STREAM beforehand pinning the pool at one stream per session (h2c-learned-limit):
  // alone, the session goes with the first request that times out on it
  const app = await brokenThenWell('big-trailers');
  t.teardown(() => app.close());
  const fx = await startInbound({ timeoutMs: 300, limits: { appPingTimeoutMs: 1000 }, externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  // the first answer: its head and body reach the caller, its trailers wedge the session
  const wedging = caller.request({ ':path': '/big' });
  wedging.on('error', () => {});
  const [head] = (await once(wedging, 'response')) as [http2.IncomingHttpHeaders];
  t.equal(head[':status'], 200, 'the answer that wedges the session began');
  const statuses: number[] = [];
  const started = Date.now();
  // bounded: at most 15 requests of at most 300 ms each (a probe's PING has 1 s)
  for (let i = 0; i < 15 && statuses.at(-1) !== 200; i++) statuses.push((await h2Request(caller, { ':path': `/r${i}` })).status);
  t.equal(statuses.at(-1), 200, `answered again (statuses ${statuses.join(', ')} in ${Date.now() - started} ms)`);
  t.equal(app.broken(), 1, 'the wedged connection was the first');
});

t.test('a healthy app refusing one stream (over its stream limit: REFUSED_STREAM, no GOAWAY) does not fail its session-mates', async (t) => {
  // the app answers its first stream late, refuses every other, and answers PINGs
  let connections = 0;
  let answerFirst: (() => void) | undefined;
  let firstSeen!: () => void;
  const seen = new Promise<void>((resolve) => (firstSeen = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let streams = 0;
    speakH2c(socket, (f, send) => {
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) send(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      else if (f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0) send(frame(FRAME.PING, FLAG.ACK, 0, Buffer.from(f.payload)));
      else if (f.type === FRAME.HEADERS && ++streams === 1) {
        firstSeen();
        // :status 200 (static table index 8), END_STREAM | END_HEADERS: held until this
        // connection has refused a stream (or, on a connection that refuses none, 400 ms)
        const answer = () => send(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, f.streamId, Buffer.from([0x88])));
        if (connections === 1) answerFirst = answer;
        else setTimeout(answer, 400);
      } else if (f.type === FRAME.HEADERS) {
        send(frame(FRAME.RST_STREAM, 0, f.streamId, Buffer.from([0, 0, 0, ERROR.REFUSED_STREAM])));
        // the refused stream is out before the answer in flight on the same session
        setImmediate(() => answerFirst?.());
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const fx = await startInbound({ timeoutMs: 3000, limits: { appPingTimeoutMs: 1000 }, externalApp: { protocol: 'h2c', port: (server.address() as net.AddressInfo).port } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  const inFlight = h2Request(caller, { ':path': '/slow' });
  await seen;
  await h2Request(caller, { ':path': '/refused' }); // refused, then replayed on a new session (its first stream: answered, 400 ms late)
  t.ok(answerFirst !== undefined, 'the first answer was held until the refusal');
  const answered = await inFlight;
  t.equal(answered.status, 200, `the request in flight on the refusing session is answered (${answered.status} ${answered.body})`);
  t.ok(connections >= 2, 'the refused request went to a new session');
  t.equal(connections, 2, 'one new session, no more');
  // a refusal is not held against a session that answers its PING (the app enforced its limit,
  // RFC 9113 §8.7): it stays in the pool, taking no more streams than it had then
  t.equal(sockets.size, connections, 'the refusing session stays open');
});
