// A session that reads nothing while a request on it waits for its answer is PINGed after a
// second of that silence, and destroyed if the ACK is not back within 5 s: the request is sent
// again over a new session and answered, long before its 15 s timeout (before, it waited the
// timeout out and got 504, and so did every request put on the dead session meanwhile: the
// keepalive alone needs two 60 s intervals here). A live upstream whose answer takes seconds
// ACKs and keeps its session, PINGed a few times only (each probe the same silence follows
// doubles the wait for the next). A real TCP relay between the outbound and a real upstream
// drops every byte of the frozen connection (test/helpers/freezing-relay.ts). A POST cut with
// the session is not sent again, and its 502 says the session went silent (a gRPC answer cut
// mid-way: that its answer had begun). Both codecs.
// (A probe on a slow path that is not dead: slow-path-probe.test.ts.)

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { TD, makePki, request, startOutbound, startUpstream, defaultHandler, type H2Handler } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';

const TIMEOUT_MS = 15_000; // the default route timeout
const PING_INTERVAL_MS = 60_000; // far beyond the test: the keepalive's tick cannot be what finds it

/** An upstream (`handler`, else the default) behind a freezing relay, and an outbound on `codec` routing payments there; warn lines in `lines`. */
async function relayedPath(t: Tap.Test, codec: 'node' | 'meshcar', handler?: H2Handler) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, handler ? { handler } : {});
  const relay = await startFreezingRelay(upstream.port);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: TIMEOUT_MS }], { codec, pingIntervalMs: PING_INTERVAL_MS, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  return { upstream, relay, fx, lines };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a request waiting on a session gone silent is sent again over a new one within seconds`, async (t) => {
    const { relay, fx, lines } = await relayedPath(t, codec);
    t.equal((await request(fx.port)).status, 200, 'warm-up');
    relay.freeze(); // the pooled session's path goes silent, both ways
    const started = performance.now();
    // a POST beside it, on the same session: not sent again, its 502 says what happened
    const post = request(fx.port, { method: 'POST', body: 'order', headers: { 'x-request-id': 'post-after-freeze' } });
    const { status } = await request(fx.port, { headers: { 'x-request-id': 'after-freeze' } });
    const tookMs = performance.now() - started;
    t.equal(status, 200, 'the request is answered');
    const cut = await post;
    t.equal(cut.status, 502, 'the POST cut with the session is not sent again');
    t.match(
      JSON.parse(cut.body.toString()),
      { error: 'upstream_reset', message: /^the session to 127\.0\.0\.1:\d+ was closed under the request: it did not answer a PING within 5000 ms after 1000 ms in which nothing came while 2 streams were open on it \(the path or the peer is dead\); the request may have reached the upstream and is not safe to repeat, so it was not sent again$/ },
      'and its 502 says the session went silent, not that the upstream reset it',
    );
    // 1 s of silence, 5 s for the ACK, the retry: well under the 15 s timeout
    t.ok(tookMs > 5_500 && tookMs < 9_000, `after the probe's 1 + 5 s (${Math.round(tookMs)} ms)`);
    t.equal(relay.connections, 2, 'over one new connection');
    const dead = lines.filter((l) => String(l.msg).includes('did not answer a PING'));
    t.equal(dead.length, 1, 'one warn line for the dead session');
    t.match(String(dead[0]?.msg), /did not answer a PING within 5000 ms after 1000 ms in which nothing came while 2 streams were open on it/, 'saying why it was probed');
  });

  t.test(`${codec} codec: a live upstream answering after 6 s keeps its session, PINGed a few times`, async (t) => {
    const { upstream, relay, fx, lines } = await relayedPath(t, codec, (stream, headers, flags) => {
      if (headers[':path'] !== '/slow') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      setTimeout(() => stream.destroyed || stream.respond({ ':status': 200 }, { endStream: true }), 6_000).unref();
    });
    t.equal((await request(fx.port)).status, 200, 'warm-up');
    const pingsBefore = upstream.pings;
    t.equal((await request(fx.port, { path: '/slow' })).status, 200, 'the slow request is answered');
    const pings = upstream.pings - pingsBefore;
    // silent windows of 1, 2 and 4 s (each after an ACK) end at about 1, 3 and 7 s: two PINGs
    // within the 6 s; one every 2 s (no doubling) would be three
    t.ok(pings >= 1 && pings <= 2, `the quiet session was PINGed, and not every window (${pings} PINGs)`);
    t.equal(relay.connections, 1, 'the one session lived throughout');
    t.equal(lines.filter((l) => String(l.msg).includes('PING')).length, 0, 'nothing was declared dead');
  });
}


t.test('meshcar codec: a gRPC answer cut with a session gone silent says its answer had begun', async (t) => {
  // the upstream sends the head and one message of a server stream, then the path freezes
  const { relay, fx } = await relayedPath(t, 'meshcar', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.write(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
  });
  const client = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => client.destroy());
  const req = client.request({ ':method': 'POST', ':path': '/watch.Service/Watch', ':authority': 'payments', 'content-type': 'application/grpc', te: 'trailers' });
  req.end(Buffer.from([0, 0, 0, 0, 0]));
  const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
  t.equal(head[':status'], 200, 'the answer began');
  await once(req, 'data'); // its first message came through: the answer is under way
  relay.freeze();
  const [trailers] = (await once(req, 'trailers')) as [http2.IncomingHttpHeaders];
  t.equal(trailers['grpc-status'], '14', 'UNAVAILABLE once the silent session is judged dead');
  t.match(
    decodeURIComponent(String(trailers['grpc-message'])),
    /^the session to 127\.0\.0\.1:\d+ was closed under the request: it did not answer a PING within 5000 ms .*\(the path or the peer is dead\); its answer had begun, so it was not sent again$/,
    'saying its answer had begun, not that no retry was left',
  );
});
