// An upload the local h2c app breaks off never reaches the upstream as complete: a reset with
// NO_ERROR (what Node's client sends on destroy()) ends the app's body inside Node as a clean
// end would, and the outbound must pass it on as RST_STREAM, not END_STREAM. The upstream is
// written as raw frames over mutual TLS, so the test sees which one it got; both codecs. The
// same holds for an upload cut by a timeout (the idle timeout: the head timeout waits for the
// end of the body) and for a stream that opens only after its
// request is over (it waited for the session): reset, never a complete (empty) request.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { makePki, sleep, startOutbound, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { startFrameRecorder, type RecordedStream } from '../helpers/raw-h2.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: the app's upload broken off with NO_ERROR`, async (t) => {
    const pki = await makePki();
    const leaf = await pki.issue(UPSTREAM_ID);
    let done: (s: RecordedStream) => void = () => {};
    const upstream = await startFrameRecorder((s) => done(s), { key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true });
    t.teardown(() => upstream.close());
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(() => fx.close());
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    // a stream still open when the outbound closes is cut with GOAWAY(INTERNAL_ERROR), an 'error' here
    session.on('error', () => undefined);
    t.teardown(() => session.close());

    const settled = new Promise<RecordedStream>((resolve) => (done = resolve));
    const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'payments' });
    stream.on('error', () => {});
    stream.write('partial-');
    for (let i = 0; i < 500 && upstream.streams[0]?.body !== 'partial-'; i++) await sleep(10);
    t.equal(upstream.streams[0]?.body, 'partial-', 'the start of the upload reached the upstream');
    stream.destroy(); // RST_STREAM(NO_ERROR), no END_STREAM
    const seen = await settled;
    t.same(seen.frames, ['HEADERS', 'DATA', 'RST'], 'the upstream got RST_STREAM, never END_STREAM');

    const whole = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'payments' });
    whole.on('error', () => {});
    const wholeSeen = new Promise<RecordedStream>((resolve) => (done = resolve));
    whole.end('all of it');
    const complete = await wholeSeen;
    t.equal(complete.frames.at(-1)?.endsWith('+END'), true, 'a whole upload still ends with END_STREAM');
    t.equal(complete.body, 'all of it');
  });
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: an upload the app stalls, cut by the idle timeout, is reset, never ended`, async (t) => {
    const pki = await makePki();
    const leaf = await pki.issue(UPSTREAM_ID);
    let done: (s: RecordedStream) => void = () => {};
    const settled = new Promise<RecordedStream>((resolve) => (done = resolve));
    const upstream = await startFrameRecorder((s) => done(s), { key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true });
    t.teardown(() => upstream.close());
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 300, idleTimeoutMs: 300 }], { codec });
    t.teardown(() => fx.close());
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    // a stream still open when the outbound closes is cut with GOAWAY(INTERNAL_ERROR), an 'error' here
    session.on('error', () => undefined);
    t.teardown(() => session.close());
    const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'payments' });
    stream.on('error', () => {});
    const status = new Promise<number>((resolve) => stream.on('response', (h) => resolve(Number(h[':status']))));
    stream.write('partial-'); // and nothing more: the upstream never answers, the idle timeout fires
    t.equal(await status, 408, 'the app gets 408: its upload stalled, not the upstream');
    const seen = await settled;
    t.same(seen.frames, ['HEADERS', 'DATA', 'RST'], 'the upstream got RST_STREAM, never END_STREAM');
    stream.close();

    // the same over HTTP/1.1 with a Content-Length the app never finishes sending
    const again = new Promise<RecordedStream>((resolve) => (done = resolve));
    const socket = net.connect(fx.port, '127.0.0.1');
    t.teardown(() => socket.destroy());
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.write('POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\n\r\npartial-');
    const cut = await again;
    t.same(cut.frames, ['HEADERS', 'DATA', 'RST'], 'HTTP/1.1 with Content-Length: RST_STREAM, never END_STREAM');
    for (let i = 0; i < 300 && !answer.includes('\r\n\r\n'); i++) await sleep(10);
    t.match(answer, /^HTTP\/1\.1 408 /, 'the app gets 408');
    t.match(answer, /\r\nconnection: close\r\n/i, 'and the connection goes (the rest of the body is not awaited)');
  });
}

/**
 * A TCP relay that holds each connection (no bytes either way) until release(): the outbound's
 * session to the upstream connects only when the test says so.
 */
async function startHeldRelay(targetPort: number) {
  const held: net.Socket[] = [];
  let released = false;
  const join = (client: net.Socket) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
    client.resume();
  };
  const relay = net.createServer((client) => {
    client.pause();
    if (released) join(client);
    else held.push(client);
  });
  relay.listen(0, '127.0.0.1');
  await new Promise((resolve) => relay.once('listening', resolve));
  return {
    port: (relay.address() as net.AddressInfo).port,
    waitHeld: async () => {
      for (let i = 0; i < 500 && held.length === 0; i++) await sleep(10);
      return held.length;
    },
    release: () => {
      released = true;
      for (const c of held.splice(0)) join(c);
    },
    close: () => new Promise<void>((resolve) => relay.close(() => resolve())),
  };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: a stream that opens after its request is over is reset, never ended`, async (t) => {
    const pki = await makePki();
    const leaf = await pki.issue(UPSTREAM_ID);
    const upstream = await startFrameRecorder(() => {}, { key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true });
    t.teardown(() => upstream.close());
    const relay = await startHeldRelay(upstream.port);
    t.teardown(() => relay.close());
    // the upstream's own deadline is long (the session may take its time to connect); the app's is 200 ms
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 5000 }], { codec });
    t.teardown(() => fx.close());

    const socket = net.connect(fx.port, '127.0.0.1');
    t.teardown(() => socket.destroy());
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.write('POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\nX-Request-Timeout: 200ms\r\n\r\npartial-');
    t.equal(await relay.waitHeld(), 1, 'the session to the upstream is being dialled, and held');
    for (let i = 0; i < 300 && !answer.includes('\r\n\r\n'); i++) await sleep(10);
    t.match(answer, /^HTTP\/1\.1 504 /, 'the app gets 504 at its own deadline, before any stream exists');

    // the session connects now: the waiting request gets its stream, which is no longer wanted
    relay.release();
    // then one whole request on the same session: once it is recorded, the late stream's frames are in
    const next = net.connect(fx.port, '127.0.0.1');
    t.teardown(() => next.destroy());
    let nextAnswer = '';
    next.on('data', (chunk: Buffer) => (nextAnswer += chunk.toString('latin1')));
    next.on('error', () => {});
    next.write('POST /whole HTTP/1.1\r\nHost: payments\r\nContent-Length: 3\r\n\r\nall');
    for (let i = 0; i < 500 && !nextAnswer.includes('\r\n\r\n'); i++) await sleep(10);
    t.match(nextAnswer, /^HTTP\/1\.1 200 /, 'the next request goes through the session');
    const streams = upstream.streams;
    t.equal(streams.at(-1)?.body, 'all', 'the last stream the upstream saw is the next request');
    // nghttp2 may drop a stream reset before its HEADERS left; sent, it must be HEADERS then RST
    const late = streams.slice(0, -1);
    t.ok(late.length <= 1, 'at most one stream for the request that was over');
    if (late.length === 1) t.same(late[0]!.frames, ['HEADERS', 'RST'], 'the late stream is reset, never ended: no complete empty request');
    t.notOk(late.some((s) => s.frames.some((f) => f.endsWith('+END'))), 'no END_STREAM from the request that was over');
  });
}
