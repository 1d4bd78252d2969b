// A reload with `workers: 2` runs in every worker or in none, and the answer says which (the
// two-phase round of src/workers/reload-round.ts), for real: a sidecar with two workers, real
// mTLS, the workers' config generations read from the primary's GET /workers.
// - a worker that fails while preparing (killed then): no worker applies the reload, the
//   answer is 503 reload_aborted, and every worker still runs the old policy and generation;
// - then a valid reload reaches both workers (generation 2 everywhere, both refuse the probe);
// - a worker stopped (SIGSTOP) after it prepared, so it cannot confirm the commit: the answer
//   is 500 reload_partial (never "kept"), /config shows the new config, the stopped worker is
//   restarted, and every worker runs the same generation with the same policy. That reload
//   adds an OpenAPI spec, broken on disk before the replacement starts: the replacement runs
//   the document the primary loaded (a worker reads no file), so both enforce the same spec;
// - a worker stopped before the prepare, which it never answers: 503 reload_aborted, that
//   worker is restarted on the kept generation, and the same reload then applies everywhere.
// The last case runs on a sidecar of its own, beside the first: a worker that does not confirm
// the commit and one that does not answer the prepare are each waited for the workers' whole
// ask timeout (10 s, src/workers/asks.ts), and the two waits overlap instead of adding up. Its
// sidecar first applies one reload, so the kept generation it is restarted on is not the one
// it started with.

import t from 'tap';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/**
 * Two workers listening, both on the primary's generation `generation`. /ready first: /workers
 * asks a worker that is still booting, which cannot answer before it says hello (10 s).
 */
async function agreeOn(sidecar: RunningSidecar, generation: number): Promise<boolean> {
  if ((await sidecar.admin('/ready')).status !== 200) return false;
  const view = await workersOf(sidecar);
  return view.generation === generation && view.workers.length === 2 && view.workers.every((w) => w.listening && w.generation === generation);
}

/** The status of one request on a new mTLS connection (the workers take connections in turn). */
const probeStatus = async (port: number, path?: string) => (await probeRequest(port, fx.probe, path)).status;

/** POST /reload with no client timeout: a worker that does not confirm is waited for 10 s. */
function reload(port: number): Promise<{ status: number; body: { error?: string; message?: string; applied?: string[] } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as { error?: string; message?: string } }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A sidecar with two workers in front of the echo app, stopped with the test; its config text and a variant that refuses the probe. */
/** Worker pids a test stopped (SIGSTOP): killed at its end, as a failed wait left one stopped for good. */
const stoppedWorkers = new Set<number>();
function holdWorker(pid: number): void {
  stoppedWorkers.add(pid);
  process.kill(pid, 'SIGSTOP');
}

async function twoWorkers(t: Tap.Test) {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(async () => {
    await sidecar.stop('SIGKILL');
    for (const pid of stoppedWorkers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
  const statuses = async (path?: string) => Promise.all([0, 1, 2, 3].map(() => probeStatus(sidecar.inboundPort, path)));
  const original = await readFile(sidecar.configFile, 'utf8');
  // a policy that leaves the probe out
  const denying = original.replace('  timeout: 5s\n', '  timeout: 5s\n  authorize:\n    - from: [spiffe://mesh.local/svc/nobody]\n');
  return { sidecar, statuses, original, denying };
}

/** An OpenAPI spec that documents GET /headers only, in the test's folder. */
async function headersSpec(t: Tap.Test): Promise<string> {
  const spec = join(t.testdir(), 'orders.openapi.yaml');
  await writeFile(spec, "openapi: 3.0.3\ninfo: {title: orders, version: '1'}\npaths:\n  /headers:\n    get:\n      responses:\n        '200': {description: ok}\n");
  return spec;
}

// the two tests each run their own sidecar: side by side, their ask timeouts overlap
t.jobs = 2;

t.test('workers: 2: a reload runs in every worker or in none, and the answer says which', { timeout: 60_000 }, async (t) => {
  const { sidecar, statuses, original, denying } = await twoWorkers(t);
  const lines = sidecar.process.lines;
  const after = (mark: number, msg: string, worker?: number) => (l: Record<string, unknown>) => lines.indexOf(l) >= mark && l.msg === msg && (worker === undefined || l.worker === worker);
  t.same(await statuses(), [200, 200, 200, 200], 'the probe may call');
  t.ok(await agreeOn(sidecar, 1), '/workers: the primary and both workers on config generation 1');

  // the policy that leaves the probe out; one worker dies while the round waits for the other
  await writeFile(sidecar.configFile, denying);
  let [first, second] = (await workersOf(sidecar)).workers;
  holdWorker(second?.pid as number);
  let mark = lines.length;
  const aborted = reload(sidecar.adminPort);
  await sidecar.process.waitFor(after(mark, 'config generation 2 prepared; waiting for the primary to commit it', first?.id), 9_000);
  process.kill(second?.pid as number, 'SIGKILL');
  const refused = await aborted;
  t.equal(refused.status, 503, `a worker that did not prepare: 503 (${refused.body.message ?? ''})`);
  t.equal(refused.body.error, 'reload_aborted', 'code reload_aborted');
  t.match(refused.body.message, new RegExp(`worker ${second?.id} \\(pid ${second?.pid}\\) did not prepare the reload`), 'naming the worker');
  t.match(refused.body.message, /no worker applied it; the running config \(generation 1\) is kept/, 'saying nothing changed');
  t.notMatch((await sidecar.admin('/config')).body, /nobody/, '/config: the old policy');
  await waitFor(() => agreeOn(sidecar, 1), 10_000, 'the replacement listening, every worker on generation 1', sidecar.process);
  t.same(await statuses(), [200, 200, 200, 200], 'the worker that had prepared dropped it: the old policy everywhere');

  // the same file again, every worker up: both apply it
  const applied = await reload(sidecar.adminPort);
  t.equal(applied.status, 200, 'POST /reload: 200');
  t.same(applied.body.applied, ['inbound.authorize'], 'inbound.authorize applied');
  t.ok(await agreeOn(sidecar, 2), '/workers: the primary and both workers on generation 2');
  t.same(await statuses(), [403, 403, 403, 403], 'both workers refuse the probe now');

  // the old policy back and a spec that documents GET /headers only; the second worker
  // prepares it, then stops before it can confirm
  const spec = await headersSpec(t);
  await writeFile(sidecar.configFile, original.replace('  timeout: 5s\n', `  timeout: 5s\n  openapi: {spec: ${spec}, mode: enforce}\n`));
  [first, second] = (await workersOf(sidecar)).workers;
  holdWorker(first?.pid as number);
  mark = lines.length;
  const partly = reload(sidecar.adminPort);
  // up to 9 s: preparing compiles the spec, which took over 5 s on a loaded host (a folder run); the
  // primary waits 10 s for a prepare
  await sidecar.process.waitFor(after(mark, 'config generation 3 prepared; waiting for the primary to commit it', second?.id), 9_000);
  holdWorker(second?.pid as number);
  process.kill(first?.pid as number, 'SIGCONT');
  // the replacement starts after this: were it to read the spec, it could not start
  await writeFile(spec, 'openapi: [broken\n');
  const partial = await partly;
  t.equal(partial.status, 500, `a worker that did not confirm: 500 (${partial.body.message ?? ''})`);
  t.equal(partial.body.error, 'reload_partial', 'code reload_partial');
  t.match(partial.body.message, new RegExp(`worker ${second?.id} \\(pid ${second?.pid}\\) did not confirm generation 3`), 'naming the worker');
  t.match(partial.body.message, /generation 3 is in force; the workers that did not confirm it are restarted on it/, 'saying what runs');
  t.notOk(lines.slice(mark).some((l) => typeof l.msg === 'string' && l.msg.includes('the running config is kept')), 'no log line claims the running config is kept');
  t.notMatch((await sidecar.admin('/config')).body, /nobody/, '/config: the new config (the old policy again), as the workers run it');
  await waitFor(() => agreeOn(sidecar, 3), 10_000, 'the stopped worker replaced, every worker on generation 3', sidecar.process);
  const now = (await workersOf(sidecar)).workers;
  t.notOk(now.some((w) => w.pid === second?.pid), 'the worker that did not confirm was restarted');
  t.ok(now.some((w) => w.pid === first?.pid), 'the one that confirmed kept running');
  t.same(await statuses(), [200, 200, 200, 200], 'both workers run generation 3: the probe may call again');
  t.same(await statuses('/undocumented'), [404, 404, 404, 404], 'both enforce the spec the primary loaded, the replacement too (the file is broken now)');
  // the primary's reload lines carried component twice ("workers", then "reload"): one key each
  t.same(sidecar.process.repeatedKeys, [], 'no log line of the primary or a worker repeats a key');
  t.equal(await sidecar.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
});

t.test('workers: 2: a worker stuck for the whole prepare is restarted on the kept generation; the same reload then applies', { timeout: 60_000 }, async (t) => {
  const { sidecar, statuses, original, denying } = await twoWorkers(t);
  // one reload first (the spec that documents GET /headers, the probe's path): generation 2 is
  // the one to keep, not the one the sidecar started with
  await writeFile(sidecar.configFile, original.replace('  timeout: 5s\n', `  timeout: 5s\n  openapi: {spec: ${await headersSpec(t)}, mode: enforce}\n`));
  const toTwo = await reload(sidecar.adminPort);
  t.equal(toTwo.status, 200, `a first reload: 200 (${toTwo.body.message ?? ''})`);
  t.ok(await agreeOn(sidecar, 2), '/workers: the primary and both workers on generation 2');

  // a worker stuck for the whole prepare (stopped: it never answers): the reload is aborted
  // and that worker restarted on generation 2, so the next reload is not aborted the same way
  const [first, second] = (await workersOf(sidecar)).workers;
  await writeFile(sidecar.configFile, denying);
  holdWorker(first?.pid as number);
  const stuck = await reload(sidecar.adminPort);
  t.equal(stuck.status, 503, `a worker that never answered the prepare: 503 (${stuck.body.message ?? ''})`);
  t.match(stuck.body.message, new RegExp(`worker ${first?.id} \\(pid ${first?.pid}\\) did not prepare the reload: .*did not answer prepare`), 'naming the worker');
  await waitFor(async () => (await agreeOn(sidecar, 2)) && !(await workersOf(sidecar)).workers.some((w) => w.pid === first?.pid), 10_000, 'the stuck worker replaced, every worker on generation 2', sidecar.process);
  t.ok((await workersOf(sidecar)).workers.some((w) => w.pid === second?.pid), 'the worker that answered kept running');
  t.same(await statuses(), [200, 200, 200, 200], 'the old policy everywhere');
  t.same(await statuses('/undocumented'), [404, 404, 404, 404], 'the replacement too enforces the spec of generation 2');
  const again = await reload(sidecar.adminPort);
  t.equal(again.status, 200, `the same reload again: 200 (${again.body.message ?? ''})`);
  t.same(await statuses(), [403, 403, 403, 403], 'both workers run it');
  t.equal(await sidecar.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
});
