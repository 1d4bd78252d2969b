// A session whose probe PING has gone unanswered for PROBED_SESSION_GRACE_MS takes no new
// stream: a new session to the same endpoint is dialled beside it. The case is a path that died
// silently with the upstream fine (a NAT entry or a middlebox dropped): with one endpoint, every
// request of the probe's seconds went onto the dead session and was cut with it, POSTs as 502.
// Here the one endpoint sits behind a real TCP relay whose open connection is then frozen (new
// connections pass); three GETs wait on the frozen session until its silence watch probes it,
// then 10 POSTs must be answered over one new session. The meshcar codec (the node codec's
// agent picks its own session on the slow path: not covered).

import t from 'tap';
import { TD, makePki, request, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';
import { waitFor } from '../helpers/mesh.js';
import { PROBED_SESSION_GRACE_MS } from '../../src/outbound/probed-sessions.js';

t.test('a session with its probe out takes no new request: a new session to the same endpoint does', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const relay = await startFreezingRelay(upstream.port);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 15_000 }], { codec: 'meshcar', pingIntervalMs: 60_000, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  t.equal((await request(fx.port)).status, 200, 'warm-up answered');
  t.equal(relay.connections, 1, 'over one session');

  relay.freeze(); // that session goes silent, both ways; a new connection would pass
  const stuck = [1, 2, 3].map((i) => request(fx.port, { headers: { 'x-request-id': `stuck-${i}` } }));
  const probing = () => fx.outbound.upstreams()[0]?.addresses?.[0]?.probing === true;
  await waitFor(async () => probing(), 5_000, 'the silent session probed');
  // the rule's grace (a live peer's ACK would be back by now), then the POSTs, within the
  // probe's 5 s: a reading of time, not a condition, as the rule itself is one
  await new Promise((r) => setTimeout(r, PROBED_SESSION_GRACE_MS + 50));
  const upstreamBefore = upstream.requests;
  const posts: Array<{ status: number; ms: number }> = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    const { status } = await request(fx.port, { method: 'POST', body: `order ${i}`, headers: { 'x-request-id': `post-${i}` } });
    posts.push({ status, ms: Math.round(performance.now() - started) });
  }
  t.ok(probing(), 'the probe still out after the POSTs (they ran inside its window)');
  t.same(
    posts.map((p) => p.status),
    Array(10).fill(200),
    `every POST answered (${posts.map((p) => `${p.status}/${p.ms}ms`).join(' ')})`,
  );
  t.ok(
    posts.every((p) => p.ms < 2_000),
    'none waited on the silent session',
  );
  t.equal(upstream.requests - upstreamBefore, 10, 'all reached the upstream');
  t.equal(relay.connections, 2, 'over one new session, not one per request');
  const stuckStatuses = (await Promise.all(stuck)).map((r) => r.status);
  t.same(stuckStatuses, [200, 200, 200], 'the GETs stuck on the silent session were retried once it was judged dead');
  t.equal(lines.filter((l) => String(l.msg).includes('did not answer a PING')).length, 1, 'the silent session declared dead once');
  t.notOk(probing(), 'and the endpoint no longer shown probing');
  t.equal(relay.connections, 2, 'the retries went to the new session too');
});
