// What the primary shows of its workers' counts (workers: 2 or 3), for real: a sidecar with
// several workers, real mTLS requests, the primary's /metrics, /endpoints and /workers.
// - a worker killed and restarted: meshcar_requests_total, the duration histogram's count and
//   /endpoints' counts do not go down (the dead worker's last counts are kept by the primary;
//   Prometheus would read a drop as a counter reset); new requests add to them; no counter,
//   _bucket, _sum or _count series on the page goes down, not even by the one ulp a float sum
//   loses when the dead worker's counts are added in another order (a preload,
//   test/fixtures/float-counter-worker.cjs, gives the three workers a counter of 0.1, 0.2, 0.3);
// - process_max_fds is one worker's limit (not N times it), nodejs_version_info is 1;
// - a stopped worker (SIGSTOP): /metrics and /endpoints still answer 200 within the short ask
//   timeout, with the others' counts and the stopped one's last, meshcar_workers_unresponsive 1,
//   and /workers marks it unresponsive (they answered 500 after 10 s);
// - a worker that forges answers (test/fixtures/forging-worker.cjs): an answer to an ask made
//   of another worker is not taken, and a metrics answer beyond the size cap is refused.

import t from 'tap';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { startSidecar, metricValue, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** Sum of every sample of a family whose labels contain `match`. */
function total(text: string, family: string, match = ''): number {
  return text.split('\n').filter((l) => l.startsWith(`${family}{`) && l.includes(match)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

interface Counts {
  readonly requests: number;
  readonly durations: number;
  readonly endpoints: number;
  readonly metrics: string;
}

async function counts(sidecar: RunningSidecar): Promise<Counts> {
  const [metrics, endpoints] = await Promise.all([sidecar.admin('/metrics'), sidecar.admin('/endpoints')]);
  if (metrics.status !== 200 || endpoints.status !== 200) throw new Error(`/metrics ${metrics.status}, /endpoints ${endpoints.status}: ${metrics.body.slice(0, 200)} ${endpoints.body.slice(0, 200)}`);
  const rows = (JSON.parse(endpoints.body) as { endpoints: Array<{ direction: string; count: number }> }).endpoints;
  return {
    requests: total(metrics.body, 'meshcar_requests_total', 'direction="inbound"'),
    durations: total(metrics.body, 'meshcar_request_duration_seconds_count', 'direction="inbound"'),
    endpoints: rows.filter((r) => r.direction === 'inbound').reduce((sum, r) => sum + r.count, 0),
    metrics: metrics.body,
  };
}

/**
 * The cumulative series (counters; histograms' _bucket, _sum, _count; summaries' _sum, _count)
 * of page `before` that are lower on page `after`, as `series before -> after`.
 */
function decreased(before: string, after: string): string[] {
  const types = new Map([...before.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
  const cumulative = (series: string) => {
    const name = series.split('{')[0] as string;
    if (types.get(name) === 'counter') return true;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    return family !== name && ['histogram', 'summary'].includes(types.get(family) as string);
  };
  const values = (page: string) => new Map(page.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  const now = values(after);
  return [...values(before)].filter(([series, value]) => cumulative(series) && (now.get(series) ?? Infinity) < value).map(([series, value]) => `${series} ${value} -> ${now.get(series)}`);
}

const send = async (sidecar: RunningSidecar, n: number) => {
  for (let i = 0; i < n; i++) await probeRequest(sidecar.inboundPort, fx.probe);
};

// Each test runs its own two-worker sidecar: the first (a restart, a stop, /metrics read again
// and again, each render at least 1 s after the last) runs beside the other two.
t.jobs = 2;

t.test('counts never go down when a worker dies or stops, not even by a float ulp; per-process gauges are not summed', { timeout: 40_000 }, async (t) => {
  // three workers: a float sum of three changes its rounding when one of them is added last
  const floats = fileURLToPath(new URL('../fixtures/float-counter-worker.cjs', import.meta.url));
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 3', nodeArgs: ['--require', floats] });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await send(sidecar, 20);
  const before = await counts(sidecar);
  t.same([before.requests, before.durations, before.endpoints], [20, 20, 20], '20 requests: requests_total, the duration count and /endpoints say 20');
  // the workers' discovery rows pass the primary's shape check and merge: what was answered, as OpenAPI keys
  const discovery = await sidecar.admin('/endpoints?format=openapi');
  t.equal(discovery.status, 200, `the discovery document: ${discovery.body.slice(0, 200)}`);
  t.match(discovery.body, /"responses":\{"200":\{"description":"answered 200"\}\}/, 'the status answered, merged from the workers');
  const limits = await readFile(`/proc/${sidecar.process.child.pid}/limits`, 'utf8');
  const maxFds = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  t.equal(metricValue(before.metrics, 'process_max_fds'), maxFds, `process_max_fds is one process's limit (${maxFds}), not summed over the workers`);
  t.match(before.metrics, /^nodejs_version_info\{[^}]*\} 1$/m, 'nodejs_version_info is 1');
  const startTime = metricValue(before.metrics, 'process_start_time_seconds') as number;
  t.ok(startTime <= Date.now() / 1000 && startTime > Date.now() / 1000 - 600, `process_start_time_seconds is a worker's start (${startTime}), not a sum of them`);

  t.equal(metricValue(before.metrics, 'float_test_seconds_total'), 0.1 + 0.2 + 0.3, 'the float counter of the workers: (0.1 + 0.2) + 0.3');
  const [one] = (await workersOf(sidecar)).workers;
  t.ok(one?.id === 1 && (one?.requests ?? 0) > 0 && (one?.requests ?? 0) < 20, `worker ${one?.id} served ${one?.requests} of them`);
  process.kill(one?.pid as number, 'SIGKILL');
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening), 10_000, 'the replacement listening', sidecar.process);
  const after = await counts(sidecar);
  t.same([after.requests, after.durations, after.endpoints], [20, 20, 20], 'after the worker was killed and replaced: still 20 everywhere (the dead worker\'s counts are kept)');
  t.equal(metricValue(after.metrics, 'meshcar_workers_restarts_total'), 1, 'the restart is counted');
  t.equal(metricValue(after.metrics, 'meshcar_workers'), 3, 'meshcar_workers 3 (a gauge: the dead worker is not carried over)');
  t.same(decreased(before.metrics, after.metrics), [], 'no counter, _bucket, _sum or _count series went down (the 0.1 of worker 1 now added last)');
  await send(sidecar, 4);
  const more = await counts(sidecar);
  t.same([more.requests, more.durations, more.endpoints], [24, 24, 24], '4 more requests: 24');
  t.same(decreased(after.metrics, more.metrics), [], 'nor after 4 more requests');
  t.equal(metricValue(more.metrics, 'meshcar_workers_unresponsive'), 0, 'meshcar_workers_unresponsive 0');

  // one worker stopped: the views answer with the other's counts and the stopped one's last
  const [first] = (await workersOf(sidecar)).workers;
  process.kill(first?.pid as number, 'SIGSTOP');
  t.teardown(() => void process.kill(first?.pid as number, 'SIGCONT'));
  const started = Date.now();
  const [stuck, view] = await Promise.all([counts(sidecar), workersOf(sidecar)]);
  const took = Date.now() - started;
  t.ok(took < 5_000, `/metrics, /endpoints and /workers answered 200 in ${took} ms with a worker stopped`);
  t.same([stuck.requests, stuck.durations, stuck.endpoints], [24, 24, 24], 'still 24: the stopped worker\'s last counts stand in');
  t.equal(metricValue(stuck.metrics, 'meshcar_workers_unresponsive'), 1, 'meshcar_workers_unresponsive 1');
  t.same(decreased(more.metrics, stuck.metrics), [], 'nor with a worker stopped');
  t.same(
    view.workers.map((w) => [w.id, w.unresponsive === true]),
    view.workers.map((w) => [w.id, w.id === first?.id]),
    '/workers marks the stopped worker unresponsive',
  );
  process.kill(first?.pid as number, 'SIGCONT');
  await waitFor(async () => metricValue((await sidecar.admin('/metrics')).body, 'meshcar_workers_unresponsive') === 0, 5_000, 'both answering again', sidecar.process);
});

t.test('an answer from another worker than the one asked is not taken; an oversized metrics answer is refused', { timeout: 40_000 }, async (t) => {
  const forging = fileURLToPath(new URL('../fixtures/forging-worker.cjs', import.meta.url));
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2', nodeArgs: ['--require', forging] });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await send(sidecar, 4);
  const metrics = await sidecar.admin('/metrics');
  t.equal(metrics.status, 200, '/metrics: 200');
  t.notMatch(metrics.body, /forged_total/, 'worker 1\'s oversized answer is not on the page');
  t.equal(metricValue(metrics.body, 'meshcar_workers_unresponsive'), 1, 'worker 1 counts as not answering');

  // worker 2 stopped: worker 1 answers the status ask made of worker 2 too
  const [, two] = (await workersOf(sidecar)).workers;
  process.kill(two?.pid as number, 'SIGSTOP');
  t.teardown(() => void process.kill(two?.pid as number, 'SIGCONT'));
  const listed = (await workersOf(sidecar)).workers.find((w) => w.id === two?.id);
  t.not(listed?.serial, 'forged', 'worker 2 is not shown with what worker 1 forged');
  t.equal(listed?.unresponsive, true, 'worker 2 is shown unresponsive');
});

t.test('a message to a worker that has just died does not end the primary', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const primary = sidecar.process.child.pid as number;
  const [one] = (await workersOf(sidecar)).workers;
  // one admin connection, kept open; while the primary is stopped, a GET /workers arrives on it
  // and then the worker dies: the primary, continued, reads the request before it reads that
  // its channel to the worker is closed, so it asks the dead worker (EPIPE)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  /** A GET on that connection: `sent` once the request is handed to the kernel. */
  const get = (path: string) => {
    let sent: () => void = () => undefined;
    const written = new Promise<void>((resolve) => (sent = resolve));
    const answer = new Promise<number | string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: sidecar.adminPort, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('finish', sent);
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    return { written, answer };
  };
  t.equal(await get('/healthz').answer, 200, 'the admin connection is open');
  process.kill(primary, 'SIGSTOP');
  const asked = get('/workers');
  await asked.written;
  process.kill(one?.pid as number, 'SIGKILL');
  // the worker is gone (a zombie: its parent is stopped), its end of the channel closed
  await waitFor(async () => (await readFile(`/proc/${one?.pid}/stat`, 'utf8')).split(' ')[2] === 'Z', 5_000, 'the worker dead');
  process.kill(primary, 'SIGCONT');
  t.equal(await asked.answer, 200, 'GET /workers answers');
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 10_000, 'the worker replaced', sidecar.process);
  t.equal(sidecar.process.child.exitCode, null, 'the primary runs on');
});
