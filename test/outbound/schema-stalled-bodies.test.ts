// The outbound's OpenAPI check in enforce mode reads a JSON body whole before the call goes
// upstream. An app that sends part of one and goes quiet was held for ever (no attempt exists
// yet, so the upstream's timers had not started, and the app listener has no request timeout),
// and the bytes it sent held the spec's maxBuffered budget: every other JSON call to that
// upstream was 503 overloaded. Now the read is bounded by the upstream's idleTimeout, counted
// from the last byte: 408 request_timeout, the budget given back at once, the call recorded;
// a body that keeps moving, however slowly, is not cut. HTTP/1.1 and h2c app connections,
// both HTTP/2 codecs toward the upstream.

import t from 'tap';
import net from 'node:net';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h2cRequest, makePki, request, sleep, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { parseResponse } from '../helpers/raw-http.js';
import { frame, FRAME, requestHeaders, settingsFrame } from '../helpers/raw-h2.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const SPEC = resolve('config/orders.openapi.yaml');
const IDLE_MS = 1000;
const JSON_HEAD = { 'content-type': 'application/json', 'idempotency-key': 'idem-0001' };
// 182 bytes of a valid order, held back before its end
const PART = `{"item":"book","qty":3,"note":"${'x'.repeat(150)}"`;
const WHOLE = `${PART}}`;

/** An app call whose body stops after PART: its answer's status, when it came, and whether its connection or stream closed. */
interface Stalled {
  readonly answered: Promise<{ status: number; error: string | undefined; atMs: number }>;
  readonly closed: Promise<void>;
  stop(): void;
}

function stallHttp1(port: number): Stalled {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  let sentAt = 0;
  const answered = new Promise<{ status: number; error: string | undefined; atMs: number }>((done) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const res = parseResponse(received, false);
      if (res !== undefined) done({ status: res.status, error: res.headers['x-meshcar-error'], atMs: performance.now() - sentAt });
    });
  });
  socket.write(`POST /orders HTTP/1.1\r\nHost: payments\r\ncontent-type: application/json\r\nidempotency-key: idem-0001\r\ncontent-length: ${WHOLE.length}\r\n\r\n`);
  socket.write(PART, () => (sentAt = performance.now()));
  return { answered, closed: new Promise((done) => socket.once('close', () => done())), stop: () => socket.destroy() };
}

function stallH2c(session: http2.ClientHttp2Session): Stalled {
  const stream = session.request({ ':method': 'POST', ':path': '/orders', ':authority': 'payments', ...JSON_HEAD }, { endStream: false });
  stream.on('error', () => {});
  let sentAt = 0;
  const answered = new Promise<{ status: number; error: string | undefined; atMs: number }>((done) => {
    stream.on('response', (h) => done({ status: Number(h[':status']), error: h['x-meshcar-error'] as string | undefined, atMs: performance.now() - sentAt }));
  });
  stream.resume();
  stream.write(PART, () => (sentAt = performance.now()));
  return { answered, closed: new Promise((done) => stream.once('close', () => done())), stop: () => stream.close(http2.constants.NGHTTP2_CANCEL) };
}

/** An h2c call by hand whose whole (valid) body is sent without END_STREAM; stop() resets the stream (CANCEL). */
async function resetH2c(port: number, t: { teardown(fn: () => void): void }): Promise<{ stop(): void }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => {});
  t.teardown(() => socket.destroy());
  await new Promise((done) => socket.once('connect', done));
  const fields = [[':method', 'POST'], [':scheme', 'http'], [':path', '/orders'], [':authority', 'payments'], ['content-type', 'application/json'], ['idempotency-key', 'idem-0001']] as const;
  socket.write(Buffer.concat([H2_PREFACE, settingsFrame(), requestHeaders(1, fields, false), frame(FRAME.DATA, 0, 1, Buffer.from(WHOLE))]));
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
  return { stop: () => socket.write(frame(FRAME.RST_STREAM, 0, 1, cancel)) };
}

/** An outbound enforcing the spec on `payments` (a real upstream behind it), and an h2c session to its listener. */
async function enforcingOutbound(t: { teardown(fn: () => unknown): void }, codec?: 'node' | 'meshcar') {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 500, idleTimeoutMs: IDLE_MS }], codec ? { codec } : {});
  t.teardown(() => fx.close());
  // room for one held body (each is given maxBodySize, 512, to grow in), not two
  const guard = await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 512, maxBuffered: 700 });
  fx.outbound.setSchemas(new Map([['payments', guard]]));
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  return { fx, upstream, session, guard };
}

for (const codec of ['node', 'meshcar'] as const) {
  for (const app of ['http1', 'h2c'] as const) {
    t.test(`codec ${codec}, ${app} app: a JSON body that stops is 408 at the upstream's idleTimeout; the budget comes back`, async (t) => {
      const { fx, upstream, session, guard } = await enforcingOutbound(t, codec);
      const call = () => (app === 'h2c' ? h2cRequest(session, { ':method': 'POST', ':path': '/orders', ...JSON_HEAD }, WHOLE) : request(fx.port, { method: 'POST', path: '/orders', headers: JSON_HEAD, body: WHOLE }));

      const stalled = app === 'h2c' ? stallH2c(session) : stallHttp1(fx.port);
      t.teardown(() => stalled.stop());
      await waitFor(async () => guard.budget.used === 512, 3000, 'the stalled body is held');
      t.equal(fx.outbound.inFlight, 1, 'the read is in flight (a drain waits for it)');
      const meanwhile = await call();
      t.equal(meanwhile.status, 503, 'while it is held, the budget is full');
      // the record's bytesOut is the refusal's JSON body the app read (it was 0)
      await waitFor(async () => fx.observer.requests.some((r) => r.status === 503), 3000, 'the refusal is recorded');
      t.equal(fx.observer.requests.find((r) => r.status === 503)?.bytesOut, meanwhile.body.length, `the refusal's ${meanwhile.body.length} body bytes in its record`);

      // bounded: without the bound on the read there is never an answer
      const answer = await Promise.race([stalled.answered, sleep(IDLE_MS + 4000).then(() => ({ status: 0, error: 'no answer within 5 s', atMs: -1 }))]);
      t.equal(answer.status, 408, 'the stalled call is answered 408');
      t.equal(answer.error, 'request_timeout');
      t.ok(answer.atMs >= IDLE_MS - 50 && answer.atMs < IDLE_MS + 1500, `at the idleTimeout after its last byte (${Math.round(answer.atMs)} ms)`);
      t.equal(guard.budget.used, 0, 'its bytes were given back before the answer');
      await stalled.closed;
      t.pass(app === 'h2c' ? 'the stream is closed after the answer (NO_ERROR)' : 'the connection is closed after the answer');
      const next = await call();
      t.equal(next.status, 200, 'the next JSON call goes through');
      const record = fx.observer.requests.find((r) => r.status === 408);
      t.match(record, { direction: 'outbound', peer: 'payments', path: '/orders', errorCode: 'request_timeout' }, 'recorded as any refusal');
      t.ok((record?.durationSeconds ?? 0) >= (IDLE_MS - 50) / 1000, 'its duration counts from its arrival');
      await waitFor(async () => fx.outbound.inFlight === 0, 3000, 'nothing in flight');
    });
  }
}

for (const app of ['http1', 'h2c'] as const) {
  t.test(`${app} app: a JSON body that keeps moving, slower than the idleTimeout in all, is not cut; one abandoned is recorded`, async (t) => {
    const { fx, upstream, session, guard } = await enforcingOutbound(t);

    // 4 pieces, 400 ms apart: 1.6 s in all, never 1 s without a byte
    const pieces = [WHOLE.slice(0, 50), WHOLE.slice(50, 100), WHOLE.slice(100, 150), WHOLE.slice(150)];
    let status: number;
    if (app === 'h2c') {
      const stream = session.request({ ':method': 'POST', ':path': '/orders', ':authority': 'payments', ...JSON_HEAD });
      const head = new Promise<number>((done) => stream.on('response', (h) => done(Number(h[':status']))));
      stream.resume();
      for (const [i, piece] of pieces.entries()) {
        if (i > 0) await sleep(400);
        if (i === pieces.length - 1) stream.end(piece);
        else stream.write(piece);
      }
      status = await head;
    } else {
      const socket = net.connect(fx.port, '127.0.0.1');
      t.teardown(() => socket.destroy());
      let received = Buffer.alloc(0);
      socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
      socket.write(`POST /orders HTTP/1.1\r\nHost: payments\r\ncontent-type: application/json\r\nidempotency-key: idem-0001\r\ncontent-length: ${WHOLE.length}\r\n\r\n`);
      for (const [i, piece] of pieces.entries()) {
        if (i > 0) await sleep(400);
        socket.write(piece);
      }
      await waitFor(async () => parseResponse(received, false) !== undefined, 3000, 'the answer');
      status = parseResponse(received, false)?.status ?? 0;
    }
    t.equal(status, 200, 'forwarded and answered');

    // an app that goes away mid-body: the read ends, its bytes go back, nothing goes upstream,
    // and it is recorded (499). On h2c a raw RST_STREAM (Node's client sends END_STREAM before
    // its reset): Node then pushes an end, and the whole, valid order read so far was
    // forwarded as if the app had sent it
    const before = upstream.requests;
    const gone = app === 'h2c' ? await resetH2c(fx.port, t) : stallHttp1(fx.port);
    await waitFor(async () => guard.budget.used === 512, 3000, 'the body is held');
    gone.stop();
    await waitFor(async () => guard.budget.used === 0 && fx.outbound.inFlight === 0, 3000, 'given back, nothing in flight');
    await waitFor(async () => fx.observer.requests.some((r) => r.status === 499), 3000, 'the abandoned call is recorded');
    t.match(fx.observer.requests.at(-1), { status: 499, path: '/orders', errorCode: undefined }, 'as a call the app gave up');
    t.equal(upstream.requests, before, 'nothing went upstream');
  });
}
