// meshcar_upstream_endpoints and meshcar_upstream_lookup_failures_total with workers: 2, on the
// primary's aggregated /metrics: each worker resolves its upstreams on its own, so the gauge is
// the most addresses any worker knows (a sum said twice the endpoints), the failures add up; a
// reload that removes an upstream takes its address gauge off the page, and its failure count,
// which the primary also keeps of a dead worker, never goes down.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpPost, metricValue, startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('the aggregated page: addresses by max, failures summed, a removed upstream gone', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, {
    service: 'frontend',
    upstreams: [
      // nothing listens there: the gauge counts addresses known, not reachable ones
      { name: 'orders', endpoints: ['127.0.0.1:9', '127.0.0.2:9'], identity: 'spiffe://mesh.local/svc/orders' },
      // .invalid never resolves (RFC 6761): each worker's first lookup fails as it starts
      { name: 'inventory', endpoints: ['dns:inventory.invalid:8443'], identity: 'spiffe://mesh.local/svc/inventory' },
    ],
    extraYaml: 'workers: 2',
  });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const page = async () => (await sidecar.admin('/metrics')).body;
  let text = '';
  await waitFor(async () => (metricValue((text = await page()), 'meshcar_upstream_lookup_failures_total{upstream="inventory"}') ?? 0) >= 2, 10_000, 'both workers failed a lookup', sidecar.process);
  t.equal(metricValue(text, 'meshcar_upstream_endpoints{upstream="orders"}'), 2, 'orders: 2 addresses (each worker knows 2: the max, not 4)');
  t.equal(metricValue(text, 'meshcar_upstream_endpoints{upstream="inventory"}'), 0, 'inventory: none known');
  t.ok((metricValue(text, 'meshcar_upstream_lookup_failures_total{upstream="inventory"}') ?? 0) >= 2, 'the failed lookups of both workers, added up');

  // a worker dies (the primary keeps its last counts) before the upstream is removed
  const [one] = (await workersOf(sidecar)).workers;
  process.kill(one?.pid as number, 'SIGKILL');
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening && w.pid !== one?.pid), 10_000, 'the replacement listening', sidecar.process);
  const failures = metricValue(await page(), 'meshcar_upstream_lookup_failures_total{upstream="inventory"}') ?? 0;
  t.ok(failures >= 2, `failures before the reload: ${failures}`);

  // the upstream removed from the file, then reloaded
  const config = await readFile(sidecar.configFile, 'utf8');
  const without = config.replace(/ {4}inventory:\n(?: {6}.*\n)+/, '');
  t.not(without, config, 'the config names inventory');
  await writeFile(sidecar.configFile, without);
  const reload = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  text = await page();
  t.equal(metricValue(text, 'meshcar_upstream_endpoints{upstream="inventory"}'), undefined, 'the removed upstream has no address gauge (a 0 would read as an outage)');
  // its counter stays, as the other per-upstream counters do: removed in the workers, the page
  // would show the dead worker's kept count alone, a drop Prometheus reads as a reset (a spike in increase())
  t.ok((metricValue(text, 'meshcar_upstream_lookup_failures_total{upstream="inventory"}') ?? 0) >= failures, 'its failure count does not go down');
  t.equal(metricValue(text, 'meshcar_upstream_endpoints{upstream="orders"}'), 2, 'orders unchanged');
});
