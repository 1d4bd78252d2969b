// HTTP/2 abuse limits on the inbound listener, over real mutual TLS: the advertised stream and
// header-list limits, an oversized request head refused without losing the connection, and
// rapid reset (CVE-2023-44487): a caller opening and resetting streams in a tight loop gets
// GOAWAY ENHANCE_YOUR_CALM, is counted once, while another caller keeps being served.

import t from 'tap';
import http2 from 'node:http2';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { Direction, SessionRejectReason } from '../../src/metrics/traffic.js';
import { ResetGuard } from '../../src/inbound/reset-guard.js';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD, type InboundFixture } from '../helpers/inbound-fixture.js';

const BILLING_ID = `spiffe://${TD}/svc/billing`;
const GET = { ':method': 'GET', ':path': '/orders' };
const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

function recordRejections(fx: InboundFixture): Array<{ direction: Direction; reason: SessionRejectReason }> {
  const rejected: Array<{ direction: Direction; reason: SessionRejectReason }> = [];
  // the listener calls the optional method on the observer it was given, looked up per call
  Object.assign(fx.observer, { sessionRejected: (direction: Direction, reason: SessionRejectReason) => rejected.push({ direction, reason }) });
  return rejected;
}

t.test('reset guard: counts per 10 s window, ignores a busy peer with a few cancels', async (t) => {
  const trips: number[] = [];
  const guard = new ResetGuard(10, (_g, resets) => trips.push(resets), 0);
  for (let i = 0; i < 100; i++) guard.streamCompleted(1);
  for (let i = 0; i < 50; i++) guard.streamReset(2);
  t.same(trips, [], 'resets past the limit, but fewer than completed streams');
  const fresh = new ResetGuard(10, (_g, resets) => trips.push(resets), 0);
  for (let i = 0; i < 10; i++) fresh.streamReset(5);
  for (let i = 0; i < 10; i++) fresh.streamReset(10_005);
  t.same(trips, [], 'the count starts again each window');
  for (let i = 0; i < 5; i++) fresh.streamReset(10_006);
  t.same(trips, [11], 'tripped once, at limit + 1');
  t.ok(fresh.tripped);
});

t.test('advertised limits and an oversized request head', async (t) => {
  const fx = await startInbound({ limits: { maxConcurrentStreams: 40, maxHeaderBytes: 8192 } });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  t.equal((await h2Request(session, GET)).status, 200);
  // the server's SETTINGS have surely arrived once a response has
  t.equal(session.remoteSettings.maxConcurrentStreams, 40, 'SETTINGS_MAX_CONCURRENT_STREAMS');
  t.equal(session.remoteSettings.maxHeaderListSize, 8192, 'SETTINGS_MAX_HEADER_LIST_SIZE');
  // Node answers 431, or resets the stream with ENHANCE_YOUR_CALM, depending on where it notices
  const big = await h2Request(session, { ...GET, 'x-big': 'a'.repeat(20_000) }).then(
    (res) => `status ${res.status}`,
    (err: { rstCode?: number }) => `rstCode ${err.rstCode}`,
  );
  t.match(big, /^(status 431|rstCode 11)$/, `a head over the limit is refused (${big})`);
  t.equal((await h2Request(session, GET)).status, 200, 'the connection keeps serving');
  // more concurrent streams than allowed: the excess is refused, the rest served
  const slow = await Promise.allSettled(Array.from({ length: 60 }, () => h2Request(session, GET)));
  t.ok(slow.every((r) => r.status === 'fulfilled' && r.value.status === 200), 'the client queues streams beyond the limit; all are served');
});

t.test('rapid reset: the abusive session gets GOAWAY; other callers keep being served', async (t) => {
  const fx = await startInbound({ limits: { maxResetsPer10s: 100 } });
  t.teardown(() => fx.close());
  const rejected = recordRejections(fx);

  const good = await h2Connect(fx.port, await fx.tlsOptions(BILLING_ID));
  t.teardown(() => good.destroy());
  let served = 0;
  let failed = 0;
  let attacking = true;
  const goodLoop = (async () => {
    while (attacking) {
      try {
        const res = await h2Request(good, GET);
        if (res.status === 200) served++;
        else failed++;
      } catch {
        failed++;
      }
    }
  })();

  const attacker = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => attacker.destroy());
  let goawayCode: number | undefined;
  attacker.on('goaway', (code: number) => (goawayCode = code));
  const closed = new Promise<void>((resolve) => attacker.once('close', () => resolve()));
  const deadline = Date.now() + 5_000;
  let opened = 0;
  while (opened < 5_000 && Date.now() < deadline && !attacker.closed && !attacker.destroyed && goawayCode === undefined) {
    const req = attacker.request(GET);
    req.on('error', () => {});
    req.close(NGHTTP2_CANCEL);
    opened++;
    // let the frames go out and the server's answer come in now and then
    if (opened % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 3_000))]);
  attacking = false;
  await goodLoop;

  t.equal(goawayCode, NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY ENHANCE_YOUR_CALM after ${opened} streams opened and reset`);
  // Node's own mitigation (nghttp2's reset rate limit) would answer GOAWAY INTERNAL_ERROR after ~1000
  const started = fx.observer.requests.filter((r) => r.peer === 'frontend').length;
  t.ok(started > 100 && started < 1_000, `the sidecar started ${started} of the ${opened} requests the client sent: cut off early`);
  t.ok(attacker.destroyed || attacker.closed, 'the abusive connection is closed');
  t.same(rejected, [{ direction: 'inbound', reason: 'rapid_reset' }], 'counted once');
  t.ok(served > 0, `the other caller was served during the attack (${served} requests)`);
  t.equal(failed, 0, 'and saw no failure');

  // after: the other caller's session still works, and the attacker's identity may reconnect
  t.equal((await h2Request(good, GET)).status, 200);
  const again = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => again.destroy());
  t.equal((await h2Request(again, GET)).status, 200, 'a new, well-behaved session of the same identity is served');
});

t.test('a caller cancelling fewer streams than it completes keeps its session', async (t) => {
  const fx = await startInbound({ limits: { maxResetsPer10s: 20 } });
  t.teardown(() => fx.close());
  const rejected = recordRejections(fx);
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  for (let round = 0; round < 3; round++) {
    const done = await Promise.all(Array.from({ length: 20 }, () => h2Request(session, GET)));
    t.ok(done.every((r) => r.status === 200));
    for (let i = 0; i < 10; i++) {
      const req = session.request(GET);
      req.on('error', () => {});
      req.close(NGHTTP2_CANCEL);
    }
  }
  t.equal((await h2Request(session, GET)).status, 200, '30 resets (limit 20) among 60 completed: still served');
  t.notOk(goaway);
  t.same(rejected, []);
});

t.test('metrics: meshcar_http2_sessions_closed_total', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  traffic.sessionRejected('inbound', 'rapid_reset');
  t.match(await metrics.render(), /meshcar_http2_sessions_closed_total\{direction="inbound",reason="rapid_reset"\} 1/);
});
