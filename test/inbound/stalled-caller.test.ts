// A caller that never takes its answer (HTTP/2 flow-control window shut, no WINDOW_UPDATE):
// the app's answer is complete and sits in the caller's stream. The inbound's idle timeout runs
// until the caller has taken the answer, not only until the app has sent it: the stream is
// reset, its slot, bytes and in-flight count freed and the request recorded; without this the
// streams (and a graceful close waiting on them) stayed for ever. A caller taking the answer
// slowly but steadily is not cut. Raw frames over real mTLS, a real HTTP/1.1 app, both codecs.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, FLAG, frame, FRAME, requestHeaders, settingsFrame } from '../helpers/raw-h2.js';

const GET: Array<readonly [string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':path', '/answer'], [':authority', 'localhost']];
const INITIAL_WINDOW_SIZE = 0x4;

function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment);
  return frame(FRAME.WINDOW_UPDATE, 0, streamId, payload);
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw mTLS caller whose streams' windows start shut (its connection window wide open), asking GET on `ids`. */
async function shutWindowCaller(t: Tap.Test, fx: Awaited<ReturnType<typeof startInbound>>, ids: number[]) {
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(settingsFrame([[INITIAL_WINDOW_SIZE, 0]]));
  raw.write(windowUpdate(0, 0x7fffffff - 65535));
  for (const id of ids) raw.write(requestHeaders(id, GET));
  return raw;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: answers stuck behind a shut window are reset after the idle timeout`, async (t) => {
    const fx = await startInbound({ codec, app: { protocol: 'http', handler: (_req: IncomingMessage, res: ServerResponse) => res.end('x'.repeat(2000)) } });
    t.teardown(() => fx.close());
    fx.inbound.setTimeouts({ timeoutMs: 5000, idleTimeoutMs: 300 });
    const ids = [1, 3, 5, 7, 9];
    const raw = await shutWindowCaller(t, fx, ids);

    const started = Date.now();
    for (const id of ids) await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === id, `a reset of stream ${id}`, 5000);
    t.ok(Date.now() - started < 4000, 'each reset within a few idle timeouts');
    await until('every request to be recorded', () => fx.observer.requests.length === ids.length);
    t.equal(fx.inbound.inFlight, 0, 'nothing stays in flight');
    t.same(fx.observer.requests.map((r) => r.errorCode), Array(ids.length).fill('reset'), 'recorded as reset');
    t.notOk(raw.frames.some((f) => f.type === FRAME.DATA && f.streamId !== 0), 'no answer bytes could go out');
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: the sidecar's own answer (a 504) stuck behind a shut window is reset too`, async (t) => {
    const fx = await startInbound({ codec, app: { protocol: 'http', handler: () => {} } }); // never answers
    t.teardown(() => fx.close());
    fx.inbound.setTimeouts({ timeoutMs: 200, idleTimeoutMs: 300 });
    const raw = await shutWindowCaller(t, fx, [1]);
    const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the 504 head');
    t.ok(head, 'the 504 head went out; its JSON body cannot');
    await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'a reset of the stalled 504', 5000);
    await until('the request to be recorded', () => fx.observer.requests.length === 1);
    t.equal(fx.inbound.inFlight, 0, 'nothing stays in flight');
  });
}

for (const codec of ['meshcar', 'node'] as const) t.test(`${codec} codec: a caller taking its answer slowly but steadily gets all of it`, async (t) => {
  const size = 3000;
  const fx = await startInbound({ codec, app: { protocol: 'http', handler: (_req: IncomingMessage, res: ServerResponse) => res.end('y'.repeat(size)) } });
  t.teardown(() => fx.close());
  fx.inbound.setTimeouts({ timeoutMs: 5000, idleTimeoutMs: 400 });
  const raw = await shutWindowCaller(t, fx, [1]);
  await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the response head');

  // 300 bytes every 150 ms: 1.5 s in all, well past the 400 ms idle timeout, never 400 ms still
  const received = () => raw.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1).reduce((n, f) => n + f.payload.length, 0);
  for (let i = 0; i < 20 && received() < size; i++) {
    const before = received();
    raw.write(windowUpdate(1, 300));
    await until(`DATA after window update ${i + 1}`, () => received() > before || received() >= size, 2000);
    await new Promise((r) => setTimeout(r, 150)); // the caller's pace, the point of this test
  }
  await raw.waitFor((f) => f.type === FRAME.DATA && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0, 'the end of the answer');
  t.equal(received(), size, 'the whole answer arrived');
  t.notOk(raw.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId === 1), 'never reset');
  await until('the request to be recorded', () => fx.observer.requests.length === 1);
  t.equal(fx.observer.requests[0]!.errorCode, undefined);
});

// an answer larger than the caller's side buffers is still coming from the app when the idle
// timeout comes: it was recorded upstream_timeout, blaming the app ("no bytes moved either
// way"), while a stream beside it on the same connection took its answer at once
for (const codec of ['meshcar', 'node'] as const) {
  for (const protocol of ['http', 'h2c'] as const) {
    t.test(`${codec} codec, ${protocol} app: a 4 MB answer behind a shut window is recorded reset; the stream beside it flows`, async (t) => {
      const body = Buffer.alloc(4_000_000, 'x');
      const app =
        protocol === 'http'
          ? { protocol, handler: (_req: IncomingMessage, res: ServerResponse) => res.end(body) }
          : { protocol, handler: (stream: import('node:http2').ServerHttp2Stream) => {
              stream.respond({ ':status': 200 });
              stream.end(body);
            } };
      const fx = await startInbound({ codec, app, idleTimeoutMs: 800, timeoutMs: 5000 });
      t.teardown(() => fx.close());
      const raw = await shutWindowCaller(t, fx, [1, 3]);
      await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 3, 'the head of stream 3');
      raw.write(windowUpdate(3, 0x7fffffff));
      await raw.waitFor((f) => f.type === FRAME.DATA && f.streamId === 3 && (f.flags & FLAG.END_STREAM) !== 0, 'the end of stream 3', 10_000);
      t.equal(raw.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 3).reduce((n, f) => n + f.payload.length, 0), body.length, 'stream 3 took all of its answer');
      await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'a reset of stream 1', 8_000);
      const records = await fx.observer.waitForRequests(2, 5_000);
      t.same(records.map((r) => r.errorCode ?? 'none').sort(), ['none', 'reset'], 'stream 1 recorded reset, stream 3 as answered');
    });
  }
}

// the check above, made while the app still sends, cut a slow but steady reader: the relay from
// an HTTP/1.1 app resumes only once the caller's side has drained (128 KB of slack), longer than
// the idle timeout at 160 KB/s; the answer moving toward the caller now counts as progress
for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a slow but steady reader of a 400 KB answer still coming from the app gets all of it`, async (t) => {
    const body = Buffer.alloc(400_000, 'y');
    const fx = await startInbound({ codec, app: { protocol: 'http', handler: (_req: IncomingMessage, res: ServerResponse) => res.end(body) }, idleTimeoutMs: 400, timeoutMs: 10_000 });
    t.teardown(() => fx.close());
    const raw = await shutWindowCaller(t, fx, [1]);
    await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the head');
    const received = () => raw.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1).reduce((n, f) => n + f.payload.length, 0);
    const over = () => raw.frames.some((f) => (f.type === FRAME.RST_STREAM && f.streamId === 1) || (f.type === FRAME.DATA && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0));
    // 16 KB every 100 ms (bounded: 60 steps, 6 s)
    for (let i = 0; i < 60 && !over(); i++) {
      raw.write(windowUpdate(1, 16_384));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.equal(received(), body.length, 'all of it');
    t.notOk(raw.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId === 1), 'no reset');
  });
}

// http2.codec node reads delivery from the connection's bytes written: our probe's PING to an
// idle caller, and the ACK of each PING the caller sends (a gRPC client's keepalive), counted
// as the caller taking its answer, and a caller whose window stayed shut kept its stream for good
for (const phase of ['done', 'streaming'] as const) {
  for (const mode of ['our probe', 'caller PINGs'] as const) {
    t.test(`node codec, answer ${phase}, ${mode}: PINGs are not the answer moving; the stream is reset`, async (t) => {
      const timers: NodeJS.Timeout[] = [];
      t.teardown(() => timers.forEach(clearTimeout));
      const handler =
        phase === 'done'
          ? (_req: IncomingMessage, res: ServerResponse) => res.end('x'.repeat(2000))
          : (_req: IncomingMessage, res: ServerResponse) => {
              // 64 KB every 100 ms, 200 chunks at most
              let n = 0;
              const tick = () => {
                if (n++ > 200 || res.destroyed) return void res.end();
                if (res.write(Buffer.alloc(65_536, 0x7a))) timers.push(setTimeout(tick, 100));
                else res.once('drain', tick);
              };
              tick();
            };
      const fx = await startInbound({ codec: 'node', app: { protocol: 'http', handler }, limits: { sessionProbeIdleMs: 300, sessionProbeTimeoutMs: 5000 } });
      t.teardown(() => fx.close());
      fx.inbound.setTimeouts({ timeoutMs: 5000, idleTimeoutMs: 1000 });
      const raw = await shutWindowCaller(t, fx, [1]);
      let seen = 0;
      // answers the sidecar's PINGs (a live caller), and in 'caller PINGs' sends its own (bounded: 6 s)
      const loop = setInterval(() => {
        for (const f of raw.frames.slice(seen)) if (f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0) raw.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
        seen = raw.frames.length;
        if (mode === 'caller PINGs') raw.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
      }, 300);
      timers.push(setTimeout(() => clearInterval(loop), 6_000));
      t.teardown(() => clearInterval(loop));
      await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'a reset of stream 1', 5_000);
      t.pass('reset');
    });
  }
}
