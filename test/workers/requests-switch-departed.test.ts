// metrics.requests turned off by a reload with workers: 2, for real: the primary's /metrics and
// /endpoints lose the request counts of a worker that died before the reload, as every live
// worker empties its own (it kept them: the primary carries a dead worker's last counts so the
// totals never go down, and carried them on after the switch, frozen, read as live). Turned on
// again, the counts start from zero. GET /workers' `requests` goes on counting while it is off
// (it summed meshcar_requests_total: 0 for every worker). A sidecar with two workers, real mTLS requests.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpPost, startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** Sum of every inbound meshcar_requests_total sample in a /metrics text. */
const inboundRequests = (text: string) => text.split('\n').filter((l) => l.startsWith('meshcar_requests_total{') && l.includes('direction="inbound"')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

async function counts(sidecar: RunningSidecar): Promise<{ requests: number; rows: number }> {
  const [metrics, endpoints] = await Promise.all([sidecar.admin('/metrics'), sidecar.admin('/endpoints')]);
  return { requests: inboundRequests(metrics.body), rows: (JSON.parse(endpoints.body) as { endpoints: unknown[] }).endpoints.length };
}

const bothListening = async (sidecar: RunningSidecar) => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening);

t.test('a dead worker\'s request counts go with metrics.requests off, and start from zero when on again', { timeout: 40_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  for (let i = 0; i < 10; i++) await probeRequest(sidecar.inboundPort, fx.probe);
  t.same(await counts(sidecar), { requests: 10, rows: 1 }, 'on: 10 requests, one /endpoints row');
  // the scrape above gave the primary each worker's counts: one killed now leaves them to the primary
  const [one] = (await workersOf(sidecar)).workers;
  t.ok((one?.requests ?? 0) > 0, `worker ${one?.id} served ${one?.requests} of them`);
  process.kill(one?.pid as number, 'SIGKILL');
  await waitFor(() => bothListening(sidecar), 10_000, 'the replacement listening', sidecar.process);
  t.same(await counts(sidecar), { requests: 10, rows: 1 }, 'its counts are kept while metrics.requests is on');

  const original = await readFile(sidecar.configFile, 'utf8');
  await writeFile(sidecar.configFile, `${original}\nmetrics:\n  requests: false\n`);
  t.equal((await httpPost(sidecar.adminPort, '/reload')).status, 200, 'reload turning metrics.requests off: 200');
  t.same(await counts(sidecar), { requests: 0, rows: 0 }, 'off: no request sample and no /endpoints row, the dead worker\'s included');
  // GET /workers counts each worker's finished requests apart from meshcar_requests_total
  const liveBefore = 10 - (one?.requests ?? 0);
  for (let i = 0; i < 4; i++) await probeRequest(sidecar.inboundPort, fx.probe);
  const served = (await workersOf(sidecar)).workers.map((w) => w.requests);
  t.equal(served.reduce((a, b) => a + b, 0), liveBefore + 4, `off: /workers still counts what the live workers finished (${served.join(' + ')}: ${liveBefore} before, 4 since)`);
  t.ok(served.every((n) => n > 0), 'each worker its own, none 0');

  await writeFile(sidecar.configFile, original);
  t.equal((await httpPost(sidecar.adminPort, '/reload')).status, 200, 'reload turning it on again: 200');
  for (let i = 0; i < 3; i++) await probeRequest(sidecar.inboundPort, fx.probe);
  t.same(await counts(sidecar), { requests: 3, rows: 1 }, 'on again: the counts start from zero (3 requests since)');
});
