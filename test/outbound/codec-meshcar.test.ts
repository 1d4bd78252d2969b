// The outbound side with `codec: 'meshcar'`: upstream sessions made by src/h2's H2Connection
// (h2-session-pool.ts) over our own mTLS dial, against upstreams that are Node core http2 mTLS
// servers. Each test first checks the session really is ours (the SETTINGS the upstream got are
// src/h2's), so a wiring that falls back to http2-wrapper fails here instead of passing quietly.
// Counted at the upstream: handshakes, connections, requests.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_LIMITS, H2Connection } from '../../src/h2/index.js';
import { defaultHandler, h2cRequest, makePki, request, sleep, startOutbound, startUpstream, TD, waitUntil, type H2Handler, type UpstreamServer } from '../helpers/outbound-fixture.js';

const CODEC = { codec: 'meshcar' } as const;

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** The upstream's sessions were opened by src/h2 (its SETTINGS, not core http2's). */
function assertMeshcarSessions(t: TapTest, upstream: UpstreamServer): void {
  const sessions = [...upstream.sessions];
  t.ok(sessions.length > 0, 'the upstream has a session');
  for (const session of sessions) {
    const s = session.remoteSettings;
    t.equal(s.maxConcurrentStreams, DEFAULT_LIMITS.maxConcurrentStreams, "the client's SETTINGS are src/h2's");
    t.equal(s.maxHeaderListSize, DEFAULT_LIMITS.maxHeaderListSize);
  }
}

async function setup(t: TapTest, handler?: H2Handler, settings?: http2.Settings) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, { ...(handler ? { handler } : {}), ...(settings ? { settings } : {}) });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], CODEC);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  return { pki, upstream, fx };
}

t.test('GET and POST; 20 concurrent requests share ONE session; gauges', async (t) => {
  const { upstream, fx } = await setup(t);
  const get = await request(fx.port, { path: '/echo?x=1', headers: { host: 'payments', 'x-custom': 'yes' } });
  t.equal(get.status, 200);
  t.match(get.json(), { method: 'GET', path: '/echo?x=1', authority: 'payments', scheme: 'https', headers: { 'x-custom': 'yes' }, callerId: `spiffe://${TD}/svc/frontend` });
  t.equal(get.headers['x-upstream'], 'echo');
  assertMeshcarSessions(t, upstream);
  const post = await request(fx.port, { method: 'POST', body: 'hello upstream' });
  t.equal(post.status, 200);
  t.match(post.json(), { method: 'POST', body: 'hello upstream', bodyLength: 14 });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => request(fx.port, { path: `/slow/50?i=${i}` })));
  t.same(new Set(results.map((r) => r.status)), new Set([200]), 'all 20 succeeded');
  t.equal(upstream.connections, 1, 'one TCP connection');
  t.equal(upstream.handshakes.length, 1, 'one TLS handshake');
  t.equal(upstream.requests, 22);
  t.equal(fx.outbound.sessionCount('payments'), 1);
  t.equal(fx.observer.sessions.get('payments'), 1, 'the sessions gauge says 1');
  await fx.observer.waitForRequests(22);
  t.equal(fx.observer.streams.get('payments'), 0, 'every stream was reported closed');
});

t.test('a new session only when the peer allows no more streams', async (t) => {
  const { upstream, fx } = await setup(t, undefined, { maxConcurrentStreams: 5 });
  const results = await Promise.all(Array.from({ length: 12 }, () => request(fx.port, { path: '/slow/200' })));
  t.same(new Set(results.map((r) => r.status)), new Set([200]), 'all 12 succeeded');
  assertMeshcarSessions(t, upstream);
  const sessions = upstream.handshakes.length;
  t.ok(sessions >= 3 && sessions <= 4, `12 requests at 5 streams per session used ${sessions} sessions (3..4)`);
});

t.test('a burst on a cold endpoint far beyond its streams per session: every request waits its turn, none fails', async (t) => {
  // one stream per session: 40 POSTs at once need 40 sessions; waiting on other requests' dials
  // used to count as this request's own, and after three it gave up (503, the endpoint marked down)
  const { upstream, fx } = await setup(t, undefined, { maxConcurrentStreams: 1 });
  const results = await Promise.all(Array.from({ length: 40 }, () => request(fx.port, { method: 'POST', path: '/slow/50', body: 'x' })));
  const statuses: Record<string, number> = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  t.same(statuses, { 200: 40 }, 'all 40 answered');
  t.ok(upstream.handshakes.length >= 2, `over ${upstream.handshakes.length} sessions`);
});

t.test('large bodies both ways, with backpressure', async (t) => {
  const { upstream, fx } = await setup(t);
  const size = 6 * 1024 * 1024;
  const up = await request(fx.port, { method: 'POST', body: Buffer.alloc(size, 97) });
  t.equal(up.status, 200);
  t.equal(up.json().bodyLength, size, 'the upload arrived whole');
  assertMeshcarSessions(t, upstream);
  // a slow app: it reads nothing for a while; flow control must hold the upstream back
  const down = await new Promise<number>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: fx.port, path: `/bytes/${size}`, headers: { host: 'payments' }, agent: false }, (res) => {
      res.pause();
      setTimeout(() => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.resume();
      }, 300);
    });
    req.on('error', reject);
  });
  t.equal(down, size, 'the download arrived whole');
});

t.test('trailers, gRPC-style: HTTP/1.1 chunked and h2c both ways', async (t) => {
  const { upstream, fx } = await setup(t);
  const res = await request(fx.port, { path: '/trailers' });
  t.equal(res.status, 200);
  t.equal(res.trailers['grpc-status'], '0', 'response trailers reach the HTTP/1.1 app');
  assertMeshcarSessions(t, upstream);
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const grpcLike = await h2cRequest(session, { ':method': 'POST', ':path': '/trailers', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
  t.equal(grpcLike.status, 200);
  t.equal(grpcLike.trailers?.['grpc-status'], '0');
  t.equal(grpcLike.trailers?.['grpc-message'], 'all good');
  const echoed = await h2cRequest(session, { ':method': 'POST', ':path': '/echo' }, 'with trailers', { 'x-checksum': 'abc' });
  t.equal(echoed.status, 200);
  t.match(JSON.parse(echoed.body.toString()), { body: 'with trailers', trailers: { 'x-checksum': 'abc' } }, 'request trailers reach the upstream');
  const onlyHead = await h2cRequest(session, { ':method': 'GET', ':path': '/status/404' });
  t.equal(onlyHead.status, 404, 'an answer without body (END_STREAM on HEADERS) is relayed');
  t.equal(upstream.handshakes.length, 1);
});

t.test('wrong upstream identity → 502 upstream_identity_mismatch; nothing reaches it', async (t) => {
  const pki = await makePki(TD);
  const impostor = await startUpstream(pki, { id: `spiffe://${TD}/svc/impostor` });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${impostor.port}`] }], CODEC);
  t.teardown(async () => {
    await fx.close();
    await impostor.close();
  });
  const res = await request(fx.port);
  t.equal(res.status, 502);
  t.equal(res.headers['x-meshcar-error'], 'upstream_identity_mismatch');
  t.match(res.json<{ message: string }>().message, /expected spiffe:\/\/mesh\.test\/svc\/payments, but the server is spiffe:\/\/mesh\.test\/svc\/impostor/);
  t.equal(impostor.requests, 0);
  t.equal(fx.outbound.sessionCount('payments'), 0);
  t.same(fx.observer.tlsFailures, [{ direction: 'outbound', reason: 'identity_mismatch' }], 'a valid ID, but not the expected one');
});

t.test('GOAWAY: the request in flight finishes; the next opens a new session (resuming TLS)', async (t) => {
  const { upstream, fx } = await setup(t);
  t.equal((await request(fx.port)).status, 200);
  assertMeshcarSessions(t, upstream);
  await sleep(50); // the TLS 1.3 session ticket arrives after the handshake
  const inFlight = request(fx.port, { path: '/slow/300' });
  await sleep(80);
  const [first] = upstream.sessions;
  first?.goaway(); // NO_ERROR, last stream = the one in flight
  await sleep(50);
  const next = await request(fx.port);
  t.equal(next.status, 200, 'the request after GOAWAY succeeded');
  t.equal(upstream.handshakes.length, 2, 'on a new session');
  t.equal(upstream.handshakes[1]?.resumed, true, 'which resumed the TLS session');
  t.equal((await inFlight).status, 200, 'the request in flight finished on the old session');
  t.equal((await request(fx.port)).status, 200);
  t.equal(upstream.handshakes.length, 2, 'and the new session is reused');
  await waitUntil(() => fx.outbound.sessionCount('payments') === 1, 'the old session to close');
  t.equal(fx.outbound.sessionCount('payments'), 1, 'the old session closed');
  t.equal(fx.observer.sessions.get('payments'), 1);
});

t.test('a 503 is retried to success; a refused stream is retried too', async (t) => {
  let seen = 0;
  const handler: H2Handler = (stream, headers, flags) => {
    seen += 1;
    if (seen === 1) {
      stream.resume();
      stream.respond({ ':status': 503 }, { endStream: true });
      return;
    }
    if (seen === 3) {
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    defaultHandler(stream, headers, flags);
  };
  const { upstream, fx } = await setup(t, handler);
  const res = await request(fx.port);
  t.equal(res.status, 200, 'after a 503');
  t.equal(upstream.requests, 2);
  assertMeshcarSessions(t, upstream);
  const again = await request(fx.port);
  t.equal(again.status, 200, 'after REFUSED_STREAM');
  t.equal(upstream.requests, 4);
  t.equal(upstream.handshakes.length, 1, 'all on one session');
});

t.test('idle timeout without bytes → 504; idle sessions are PINGed and stay up', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 300 }], { ...CODEC, pingIntervalMs: 100 });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const slow = await request(fx.port, { path: '/slow/2000' });
  t.equal(slow.status, 504);
  t.equal(slow.headers['x-meshcar-error'], 'upstream_timeout');
  assertMeshcarSessions(t, upstream);
  const pingsBefore = upstream.pings;
  // a PING every other tick while idle: polled, as a loaded machine's ticks come late
  await waitUntil(() => upstream.pings >= pingsBefore + 2, 'two PINGs').catch(() => undefined);
  t.ok(upstream.pings >= pingsBefore + 2, `the idle session was PINGed (${upstream.pings - pingsBefore})`);
  t.equal((await request(fx.port)).status, 200);
  t.equal(upstream.handshakes.length, 1, 'answered PINGs keep the session');
});

t.test('sessions past their maximum age close gracefully and are replaced', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { ...CODEC, maxSessionAgeMs: 300 });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  t.equal((await request(fx.port)).status, 200);
  assertMeshcarSessions(t, upstream);
  const longer = request(fx.port, { path: '/slow/400' });
  await sleep(450);
  t.equal((await longer).status, 200, 'the request that outlived the age finished');
  t.equal((await request(fx.port)).status, 200);
  t.equal(upstream.handshakes.length, 2, 'a new session after the maximum age');
  await waitUntil(() => fx.outbound.sessionCount('payments') === 1, 'the old session to go');
  t.equal(fx.outbound.sessionCount('payments'), 1, 'the old one is gone');
  t.equal(fx.observer.sessions.get('payments'), 1);
});

t.test('a finished request leaves nothing holding its stream (garbage-collected, not kept by an idle tick)', async (t) => {
  const { fx } = await setup(t);
  // observe, not change: remember each stream the codec makes, weakly
  const made: Array<WeakRef<object>> = [];
  const original = H2Connection.prototype.request;
  H2Connection.prototype.request = function (this: H2Connection, ...args: Parameters<typeof original>) {
    const stream = original.apply(this, args);
    made.push(new WeakRef(stream));
    return stream;
  };
  t.teardown(() => {
    H2Connection.prototype.request = original;
  });
  for (let i = 0; i < 50; i++) t.equal((await request(fx.port, { path: `/echo?i=${i}` })).status, 200);
  t.equal(made.length, 50, 'the codec made the 50 streams');
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let alive = made.length;
  for (let round = 0; round < 20 && alive > 2; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    alive = made.filter((ref) => ref.deref() !== undefined).length;
  }
  // the idle poll of a stream (upstream idleTimeout / 4 = 75 s by default) used to stay armed
  // after the stream closed, keeping every stream and its request alive that long
  t.ok(alive <= 2, `${alive} of 50 finished streams still reachable after GC`);
});
