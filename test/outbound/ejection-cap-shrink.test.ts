// maxEjectionPercent holds for the set left after a reload (or DNS) shrinks it: the ejected
// endpoints beyond the cap are re-admitted then, the soonest to end first. Checked only when an
// endpoint was ejected, a list cut to its two ejected endpoints (of four, at 50 %) kept both out
// for the whole ejection time, the gauge at 2 (the resilience review).

import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, startUpstream, TD, UPSTREAM_ID, type H2Handler } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

const always503: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 503 }, { endStream: true });
};

t.test('a reload that leaves only ejected endpoints re-admits those beyond the cap', async (t) => {
  const pki = await makePki(TD);
  const good = [await startUpstream(pki), await startUpstream(pki)];
  const bad = [await startUpstream(pki, { handler: always503 }), await startUpstream(pki, { handler: always503 })];
  const outlierDetection = { consecutiveFailures: 1, baseEjectionMs: 600_000, maxEjectionMs: 600_000, maxEjectionPercent: 50 };
  const ports = (servers: typeof good) => servers.map((s) => s.port);
  const fx = await startBalanced(pki, { ports: [...ports(good), ...ports(bad)], outlierDetection });
  t.teardown(async () => {
    await fx.close();
    for (const s of [...good, ...bad]) await s.close();
  });
  // until both failing endpoints have failed once (and are out): 2 of 4, the cap at 50 %
  for (let i = 0; i < 200 && (bad[0]!.requests === 0 || bad[1]!.requests === 0); i++) await request(fx.port, { path: '/echo' });
  t.equal(fx.observer.ejectedCounts.at(-1), 2, 'both failing endpoints ejected');

  const upstream = (servers: typeof good): UpstreamConfig[] => [{ name: 'payments', endpoints: ports(servers).map((p) => parseEndpoint(`127.0.0.1:${p}`) as Endpoint), identity: UPSTREAM_ID, timeoutMs: 5000, routes: [], outlierDetection }];
  fx.outbound.setUpstreams(upstream(bad));
  t.equal(fx.outbound.retiredPools, 0, 'the pool was kept (its ejections with it)');
  t.equal(fx.observer.ejectedCounts.at(-1), 1, 'one of the two re-admitted: 50 % of 2');
  const view = fx.outbound.upstreams().find((u) => u.name === 'payments');
  t.equal(view?.addresses.filter((a) => a.state === 'ejected').length, 1, '/upstreams: one ejected, one back');
});
