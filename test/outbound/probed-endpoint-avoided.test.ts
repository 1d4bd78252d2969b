// While a session's probe PING is out (the session went silent with requests waiting), its
// endpoint takes no new request when another can: a partition hunt saw an endpoint whose path
// had just died, and whose latency estimate was the lowest, draw every request of a 20 req/s
// burst during the probe's 5 s, POSTs among them, cut with the session (502, not retried). Here
// endpoint A (behind a real TCP relay that is then frozen) answers at once and B after 50 ms, so
// A stays the cheaper pick while three requests wait on its dead session; POSTs sent once its
// probe is out must all go to B. The requests stuck on A are retried there once A's session is
// judged dead. Both codecs.

import t from 'tap';
import { TD, makePki, request, startOutbound, startUpstream, defaultHandler } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an endpoint whose session is being probed is skipped by new requests`, async (t) => {
    const pki = await makePki(TD);
    const fast = await startUpstream(pki);
    const slow = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        const timer = setTimeout(() => defaultHandler(stream, headers, flags), 50);
        stream.once('close', () => clearTimeout(timer));
      },
    });
    const relay = await startFreezingRelay(fast.port);
    const lines: Array<Record<string, unknown>> = [];
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`, `127.0.0.1:${slow.port}`], timeoutMs: 15_000 }], { codec, pingIntervalMs: 60_000, logger: memoryLogger(lines, 'warn') });
    t.teardown(async () => {
      await fx.close();
      await relay.stop();
      await fast.close();
      await slow.close();
    });
    // both endpoints sampled: A about a millisecond, B 50
    for (let i = 0; i < 12 && (fast.requests === 0 || slow.requests === 0); i++) await request(fx.port);
    t.ok(fast.requests > 0 && slow.requests > 0, `warm-up reached both (${fast.requests} / ${slow.requests})`);

    relay.freeze(); // A's session goes silent, both ways
    const stuck = [1, 2, 3].map((i) => request(fx.port, { headers: { 'x-request-id': `stuck-${i}` } }));
    // A's silence watch probes within 1-2 s of them (the window may have started at the
    // warm-up), and its probe is out for 5 s from then: the POSTs (about 0.6 s) go inside that
    await new Promise((r) => setTimeout(r, 3_000));
    const probingShown = () => (fx.outbound.upstreams()[0]?.addresses ?? []).map((a) => [a.address, a.probing === true]);
    t.same(probingShown(), [[`127.0.0.1:${relay.port}`, true], [`127.0.0.1:${slow.port}`, false]], 'GET /upstreams shows A probing');
    const slowBefore = slow.requests;
    const posts: Array<{ status: number; ms: number }> = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      const { status } = await request(fx.port, { method: 'POST', body: `order ${i}`, headers: { 'x-request-id': `post-${i}` } });
      posts.push({ status, ms: Math.round(performance.now() - started) });
    }
    t.same(
      posts.map((p) => p.status),
      Array(10).fill(200),
      `every POST answered (${posts.map((p) => `${p.status}/${p.ms}ms`).join(' ')})`,
    );
    t.equal(slow.requests - slowBefore, 10, 'all by B');
    t.ok(
      posts.every((p) => p.ms < 2_000),
      'none waited on A',
    );
    const stuckStatuses = (await Promise.all(stuck)).map((r) => r.status);
    t.same(stuckStatuses, [200, 200, 200], 'the requests stuck on A were retried on B once its session was judged dead');
    t.equal(lines.filter((l) => String(l.msg).includes('did not answer a PING')).length, 1, "A's session declared dead once");
    t.same(probingShown(), [[`127.0.0.1:${relay.port}`, false], [`127.0.0.1:${slow.port}`, false]], 'and no longer probing once it is gone');
  });
}
