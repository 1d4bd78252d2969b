// meshcar_upstream_ejected_endpoints{upstream} after a reload that replaces an upstream's pool
// (a changed identity, balancer or outlier detection) or removes the upstream: it says 0, the
// count of the pool now routing (a new pool starts with nothing ejected), and the retired pool,
// still finishing its streams, reports nothing more. Before, the gauge kept the retired pool's
// count: for good once that pool was let go (its timers stopped before re-admitting anything),
// so an alert on ejected endpoints fired on for an upstream with none ejected, or one gone.

import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { startTcpGate } from '../helpers/tcp-gate.js';

const outlier = (baseEjectionMs: number) => ({ consecutiveFailures: 1, baseEjectionMs, maxEjectionMs: 300_000, maxEjectionPercent: 50 });
const config = (name: string, ports: readonly number[], baseEjectionMs: number): UpstreamConfig => ({
  name,
  endpoints: ports.map((p) => parseEndpoint(`127.0.0.1:${p}`) as Endpoint),
  identity: UPSTREAM_ID,
  timeoutMs: 5000,
  routes: [],
  outlierDetection: outlier(baseEjectionMs),
});

async function setUp(t: Parameters<Parameters<typeof t.test>[1]>[0]) {
  const pki = await makePki(TD);
  const good = await startUpstream(pki);
  // a closed gate: every connection to it is dropped, a connect failure (one ejects it)
  const dead = await startTcpGate();
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${good.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await dead.stop();
    await good.close();
  });
  const gauge = new Map<string, number>();
  Object.assign(fx.observer, { ejectedEndpointsChanged: (upstream: string, n: number) => gauge.set(upstream, n) });
  fx.outbound.setUpstreams([config('payments', [good.port, dead.port], 60_000)]);
  for (let i = 0; i < 50 && gauge.get('payments') !== 1; i++) t.equal((await request(fx.port)).status, 200);
  t.equal(gauge.get('payments'), 1, 'the dead endpoint is ejected (for 60 s)');
  return { fx, gauge, good, dead };
}

/** Reloads with the same list until the retired pool, its sessions closed, is let go. */
async function untilRetiredGone(fx: Awaited<ReturnType<typeof startOutbound>>, upstreams: UpstreamConfig[]): Promise<number> {
  const until = Date.now() + 5000;
  while (fx.outbound.retiredPools > 0 && Date.now() < until) {
    await sleep(10);
    fx.outbound.setUpstreams(upstreams);
  }
  return fx.outbound.retiredPools;
}

t.test('a pool replaced by a changed outlier detection: the gauge says the new pool has none ejected', async (t) => {
  const { fx, gauge, good, dead } = await setUp(t);
  const next = [config('payments', [good.port, dead.port], 61_000)];
  fx.outbound.setUpstreams(next);
  t.equal(gauge.get('payments'), 0, 'the new pool has nothing ejected');
  t.equal(await untilRetiredGone(fx, next), 0, 'the retired pool was let go');
  t.equal(gauge.get('payments'), 0, 'and the gauge stayed 0');
});

t.test('an upstream removed: its gauge goes to 0', async (t) => {
  const { fx, gauge, good } = await setUp(t);
  const next = [config('orders', [good.port], 60_000)];
  fx.outbound.setUpstreams(next);
  t.equal(await untilRetiredGone(fx, next), 0, 'the retired pool was let go');
  t.equal(gauge.get('payments'), 0, 'payments reports none ejected');
});
