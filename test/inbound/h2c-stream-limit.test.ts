// An h2c app that limits its concurrent streams (grpc-js with grpc.max_concurrent_streams: 10)
// behind the inbound: a burst of 60 concurrent gRPC calls used to get 40-50 failures UNAVAILABLE
// (upstream_reset, "the app closed the connection"): the pool assumed 100 streams on a session
// before the app's SETTINGS came, retired a healthy session on REFUSED_STREAM, and replayed a
// refused stream only for a bodiless request. Now the calls beyond the app's limit wait in the
// pool, a new session carries one stream until the SETTINGS, and a refused stream is sent again
// with its body. A real grpc-js client through mTLS; the app counts what it sees at once and on
// how many connections. Also: an app that enforces a lower limit than it announces (refusing
// streams), and one that refuses after more body went out than is kept for a replay.

import t, { type Test } from 'tap';
import http2 from 'node:http2';
import grpc from '@grpc/grpc-js';
import { h2Connect, h2Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import type { InboundLimits } from '../../src/inbound/index.js';
import { LIMIT_SERVICE, limitedGrpcApp } from '../helpers/limited-grpc-app.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

async function grpcClient(fx: InboundFixture): Promise<grpc.Client & Record<string, (...args: unknown[]) => unknown>> {
  const leaf = await fx.client();
  const Client = grpc.makeGenericClientConstructor(LIMIT_SERVICE, 'Limit');
  return new Client(
    `127.0.0.1:${fx.port}`,
    grpc.credentials.createSsl(Buffer.from(fx.pki.bundlePem), Buffer.from(leaf.privateKeyPem), Buffer.from(leaf.chainPem), { checkServerIdentity: () => undefined }),
    { 'grpc.ssl_target_name_override': 'orders' },
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

/** 60 concurrent unary calls with a 16 KiB body each: what each one got ('ok' or the error). */
function burst(client: grpc.Client & Record<string, (...args: unknown[]) => unknown>): Promise<string[]> {
  const body = Buffer.alloc(16 * 1024, 7);
  return Promise.all(
    Array.from(
      { length: 60 },
      () =>
        new Promise<string>((resolve) =>
          client.Slow?.(body, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, value?: Buffer) =>
            resolve(err ? `code=${err.code} ${err.details} ${String(err.metadata?.get('x-meshcar-error'))}` : value?.toString() === `got ${body.length}` ? 'ok' : `wrong answer ${String(value)}`),
          ),
      ),
    ),
  );
}

const variants: Array<{ name: string; limits: InboundLimits; refusals?: boolean }> = [
  { name: 'default pool', limits: {} },
  // a session sending 100 streams before the app's SETTINGS (the old assumption): the app
  // refuses 90 of the cold burst, and every one is sent again, body and all
  { name: 'a cold session sending 100 streams before the SETTINGS', limits: { appColdStreams: 100 }, refusals: true },
];

for (const codec of ['node', 'meshcar'] as const) {
  for (const variant of variants) {
    t.test(`codec ${codec}, ${variant.name}: 60 concurrent gRPC calls to an app allowing 10 streams all succeed, cold and warm`, async (t) => {
      const app = await limitedGrpcApp();
      t.teardown(() => app.close());
      const fx = await startInbound({ codec, timeoutMs: 20_000, limits: variant.limits, externalApp: { protocol: 'h2c', port: app.port } });
      t.teardown(() => fx.close());
      const client = await grpcClient(fx);
      t.teardown(() => client.close());
      for (const round of ['cold', 'warm']) {
        const started = Date.now();
        const results = await burst(client);
        const bad = results.filter((r) => r !== 'ok');
        t.equal(bad.length, 0, `${round}: all 60 answered (failures: ${[...new Set(bad)].join('; ')}; app peak ${app.stats.peak}, calls ${app.stats.calls}, sessions ${app.stats.peers.size}, ${Date.now() - started} ms)`);
      }
      t.ok(app.stats.peak <= 10, `the app never had more than its 10 calls at once (peak ${app.stats.peak})`);
      t.equal(app.stats.calls, 120, 'every call reached the app once');
      t.ok(app.stats.peers.size <= 2, `sessions stay few: the app's limit is not got around with more connections (${app.stats.peers.size})`);
      const waited = fx.observer.appStreamEvents.filter((e) => e === 'waited:granted').length;
      t.ok(waited >= 50, `the calls beyond the limit waited in the pool (${waited} granted after a wait)`);
      const replayed = fx.observer.appStreamEvents.filter((e) => e === 'refused:replayed').length;
      t.notOk(fx.observer.appStreamEvents.includes('refused:answered'), `no refused stream was answered with an error (${replayed} replayed)`);
      if (variant.refusals) t.ok(replayed > 0, 'the app refused streams of the cold burst, and they were sent again with their bodies');
    });
  }
}

/** A Node h2c app announcing no stream limit, which refuses a stream when its session already has `limit` in flight, or (x-refuse-after) once it read more than that many bytes of a request's body, on its first try. */
function refusingApp(limit: number) {
  const stats = { refused: 0, peakPerSession: 0, sessions: 0, answered: 0 };
  const server = http2.createServer();
  const triedBig = new Set<string>();
  server.on('session', (session) => {
    stats.sessions++;
    let inFlight = 0;
    session.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      if (inFlight >= limit) {
        stats.refused++;
        stream.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      stats.peakPerSession = Math.max(stats.peakPerSession, ++inFlight);
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        const id = String(headers['x-id']);
        if (size > Number(headers['x-refuse-after'] ?? Infinity) && !triedBig.has(id)) {
          triedBig.add(id);
          inFlight--;
          stats.refused++;
          stream.close(NGHTTP2_REFUSED_STREAM);
        }
      });
      stream.on('end', () => {
        setTimeout(() => {
          inFlight--;
          stats.answered++;
          if (!stream.closed) stream.respond({ ':status': 200 });
          stream.end(`got ${Buffer.concat(chunks).length}`);
        }, 30);
      });
    });
  });
  return { server, stats };
}

/** An inbound (route timeout 10 s, `limits`) in front of an h2c `server`, and a caller over mTLS; all closed at `t`'s teardown. */
async function inboundBefore(t: Test, server: http2.Http2Server, limits?: InboundLimits) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const fx = await startInbound({ timeoutMs: 10_000, ...(limits ? { limits } : {}), externalApp: { protocol: 'h2c', port: (server.address() as { port: number }).port } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  return { fx, caller };
}

t.test('an app refusing streams over a lower limit than it announces: every request is sent again with its body and answered', async (t) => {
  const { server, stats } = refusingApp(2);
  const { fx, caller } = await inboundBefore(t, server);
  const body = Buffer.alloc(8000, 1);
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => h2Request(caller, { ':method': 'POST', ':path': `/r${i}`, 'x-id': String(i) }, body)));
  t.same(results.map((r) => `${r.status} ${r.body.toString()}`), Array(12).fill(`200 got ${body.length}`), 'all answered with their whole body');
  t.ok(stats.refused > 0, `the app refused streams (${stats.refused})`);
  t.ok(stats.peakPerSession <= 2, `no session carried more than the app takes (${stats.peakPerSession})`);
  t.ok(stats.sessions <= 4, `sessions stay few (${stats.sessions})`);
  t.ok(fx.observer.appStreamEvents.filter((e) => e === 'refused:replayed').length >= stats.refused, 'every refused stream was replayed');
});

t.test('a stream refused after more body went out than is kept for a replay: 503 upstream_unavailable, not upstream_reset; one refused within the kept bytes is replayed', async (t) => {
  const { server, stats } = refusingApp(100);
  const { fx, caller } = await inboundBefore(t, server);
  // refused once 70 KiB arrived: more than the 64 KiB kept had gone out
  const big = await h2Request(caller, { ':method': 'POST', ':path': '/big', 'x-id': 'big', 'x-refuse-after': String(70 * 1024) }, Buffer.alloc(200 * 1024, 2));
  t.equal(big.status, 503);
  t.equal(big.headers['x-meshcar-error'], 'upstream_unavailable');
  const answer = JSON.parse(big.body.toString()) as { error: string; message: string };
  t.equal(answer.error, 'upstream_unavailable');
  t.match(answer.message, /refused the request's stream \(REFUSED_STREAM: it did not process it\)/);
  t.notMatch(answer.message, /closed the connection/);
  // refused once 10 KiB arrived of 30: all of it was kept, and it is sent again whole
  const small = await h2Request(caller, { ':method': 'POST', ':path': '/small', 'x-id': 'small', 'x-refuse-after': String(10 * 1024) }, Buffer.alloc(30 * 1024, 3));
  t.equal(`${small.status} ${small.body.toString()}`, `200 got ${30 * 1024}`, 'replayed with its whole body');
  t.equal(stats.refused, 2);
  t.same(fx.observer.appStreamEvents.filter((e) => e.startsWith('refused:')), ['refused:answered', 'refused:replayed']);
});

t.test('requests wait for a stream within their own deadline, and only so many wait', async (t) => {
  // the app allows one stream at a time and holds each request until the test lets it go
  const held: Array<() => void> = [];
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    stream.resume();
    held.push(() => {
      if (!stream.closed) stream.respond({ ':status': 200 });
      stream.end(String(headers[':path']));
    });
  });
  const { fx, caller } = await inboundBefore(t, server, { appMaxWaiting: 2 });
  const pool = (fx.inbound.app as unknown as { pool: { waiters: { size: number } } }).pool;
  const waitUntil = async (what: string, ok: () => boolean) => {
    for (const until = Date.now() + 5000; !ok(); ) {
      if (Date.now() > until) throw new Error(`not reached: ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const first = h2Request(caller, { ':path': '/first' });
  await waitUntil('the app holds the first request', () => held.length === 1);
  // the caller's own deadline bounds its wait for a stream
  const hurried = await h2Request(caller, { ':path': '/hurried', 'x-request-timeout': '200ms' });
  t.equal(hurried.status, 504, 'a request whose deadline passed while it waited: 504');
  t.equal(hurried.headers['x-meshcar-error'], 'upstream_timeout');
  t.equal(pool.waiters.size, 0, 'and it left the queue');
  const second = h2Request(caller, { ':path': '/second' });
  const third = h2Request(caller, { ':path': '/third' });
  await waitUntil('two requests wait', () => pool.waiters.size === 2);
  const fourth = await h2Request(caller, { ':path': '/fourth' });
  t.equal(fourth.status, 503, 'past maxWaiting: 503 at once');
  t.equal(fourth.headers['x-meshcar-error'], 'overloaded');
  // one at a time, in order: each freed stream goes to the oldest waiting request
  for (let i = 1; i <= 3; i++) {
    await waitUntil(`the app holds request ${i}`, () => held.length >= i);
    held[i - 1]?.();
  }
  t.same((await Promise.all([first, second, third])).map((r) => `${r.status} ${r.body.toString()}`), ['200 /first', '200 /second', '200 /third']);
  t.same(fx.observer.appStreamEvents.filter((e) => e.startsWith('waited:')).sort(), ['waited:gave_up', 'waited:granted', 'waited:granted', 'waited:queue_full']);
});
