// Timeouts: the upstream's deadline (`timeout`), the idle timeout (no bytes either way), and
// the app's own deadline (`grpc-timeout`, `x-request-timeout`) when it is shorter: 504
// upstream_timeout before the answer, a cut connection once it has started.

import t from 'tap';
import http2 from 'node:http2';
import { appIdentity, envTestCodec, makePki, RecordingObserver, request, silent, startUpstream, TD, UPSTREAM_ID, type H2Handler } from '../helpers/outbound-fixture.js';
import type { TestPki } from '../helpers/pki.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { createOutbound } from '../../src/outbound/index.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

async function start(t: TapTest, pki: TestPki, port: number, timeoutMs: number, idleTimeoutMs?: number) {
  const observer = new RecordingObserver();
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        {
          name: 'payments',
          endpoints: [parseEndpoint(`127.0.0.1:${port}`) as Endpoint],
          identity: UPSTREAM_ID,
          timeoutMs,
          routes: [],
          ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
        },
      ],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer,
    // codec-node-timeouts.test.ts runs this file again on the node codec (Node's Http2Stream#setTimeout)
    ...(envTestCodec() ? { codec: envTestCodec() } : {}),
  });
  const bound = await outbound.listen();
  t.teardown(() => outbound.close());
  return { port: bound.port, observer };
}

/** Sends the head and a first chunk, then nothing. */
const stalls: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 200, 'content-length': 100 });
  stream.write('partial');
};

t.test('idle timeout: no bytes before the answer → 504 upstream_timeout', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  t.teardown(() => up.close());
  const fx = await start(t, pki, up.port, 5000, 200);
  const started = Date.now();
  const res = await request(fx.port, { path: '/slow/3000' });
  const took = Date.now() - started;
  t.equal(res.status, 504);
  t.equal(res.headers['x-meshcar-error'], 'upstream_timeout');
  t.match(res.json<{ message: string }>().message, /nothing within 200 ms/);
  t.ok(took >= 180 && took < 1500, `after ${took} ms`);
  t.equal(up.requests, 1, 'a timeout is not retried');
});

t.test('idle timeout after the answer started: the response is cut', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: stalls });
  t.teardown(() => up.close());
  const fx = await start(t, pki, up.port, 5000, 200);
  const started = Date.now();
  await t.rejects(request(fx.port), 'the app sees an incomplete response');
  t.ok(Date.now() - started < 1500);
  const [record] = await fx.observer.waitForRequests(1);
  t.equal(record?.errorCode, 'upstream_timeout');
});

t.test('a busy stream is not idle: a slow trickle under the idle timeout completes', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, {
    handler: (stream) => {
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': 200 });
      let n = 0;
      const tick = setInterval(() => {
        n += 1;
        if (stream.destroyed) return clearInterval(tick);
        if (n === 10) {
          clearInterval(tick);
          stream.end('end');
        } else stream.write('tick ');
      }, 100);
    },
  });
  t.teardown(() => up.close());
  // 1 s of answer in 100 ms gaps against a 600 ms idle timeout: longer than the timeout in
  // all, each gap a sixth of it (room for a loaded test box, which delays both timers)
  const fx = await start(t, pki, up.port, 5000, 600);
  const res = await request(fx.port);
  t.equal(res.status, 200);
  t.equal(res.text, 'tick '.repeat(9) + 'end');
});

t.test('grpc-timeout shorter than the configured timeout → the timeout answer sooner', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  t.teardown(() => up.close());
  const fx = await start(t, pki, up.port, 5000);
  let started = Date.now();
  const res = await request(fx.port, { path: '/slow/3000', headers: { 'grpc-timeout': '200m' } });
  let took = Date.now() - started;
  t.equal(res.status, 504);
  t.equal(res.headers['x-meshcar-error'], 'upstream_timeout');
  t.ok(took >= 180 && took < 1500, `grpc-timeout 200m: ${took} ms`);

  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  started = Date.now();
  const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    const s = session.request({ ':authority': 'payments', ':path': '/slow/3000', 'grpc-timeout': '300000u', 'content-type': 'application/grpc' }, { endStream: true });
    s.on('response', resolve);
    s.on('error', reject);
    s.resume();
  });
  took = Date.now() - started;
  // a gRPC caller gets the timeout as a gRPC status (trailers-only), not as a 504
  t.equal(head[':status'], 200, 'h2c too, as gRPC');
  t.equal(head['grpc-status'], '4', 'DEADLINE_EXCEEDED');
  t.equal(head['x-meshcar-error'], 'upstream_timeout');
  t.ok(took >= 280 && took < 1500, `grpc-timeout 300000u: ${took} ms`);
});

t.test('x-request-timeout shorter than the configured timeout → 504 sooner; longer → the configured one', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  t.teardown(() => up.close());
  const fx = await start(t, pki, up.port, 1000);
  for (const value of ['250ms', '0.25']) {
    const started = Date.now();
    const res = await request(fx.port, { path: '/slow/3000', headers: { 'x-request-timeout': value } });
    const took = Date.now() - started;
    t.equal(res.status, 504, value);
    // raising the upstream's timeout would not help here: the message says whose deadline it was
    t.equal(res.json<{ message: string }>().message, "payments did not answer within 250 ms (the app's own deadline: its grpc-timeout or x-request-timeout)", `${value}: the app's deadline named`);
    t.ok(took >= 230 && took < 900, `x-request-timeout ${value}: ${took} ms`);
  }
  const started = Date.now();
  const res = await request(fx.port, { path: '/slow/3000', headers: { 'x-request-timeout': '10s' } });
  const took = Date.now() - started;
  t.equal(res.status, 504);
  t.equal(res.json<{ message: string }>().message, 'payments did not answer within 1000 ms (outbound.upstreams.payments.timeout)', 'the key to raise named');
  t.ok(took >= 950 && took < 2500, `a longer app deadline does not extend the upstream's: ${took} ms`);
  t.equal((await request(fx.port, { path: '/slow/50', headers: { 'x-request-timeout': '2s' } })).status, 200, 'in time: answered');
});
