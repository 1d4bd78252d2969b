// A worker slower than the asks' 10 s to prepare a reload, because the spec takes that long to
// compile, is waited for: each worker's bound is the asks' 10 s plus three times what the
// primary took to read and prepare the same file, per worker on each core
// (src/workers/prepare-deadline.ts). Before, a 1.7 MB spec the primary compiled in ~5 s took
// each of two workers over 10 s: every reload of that file was aborted (503) and both workers
// were killed at once. Here one worker is held (SIGSTOP) for 10.5 s from the prepare ask, then
// compiles a spec the primary took seconds over: the reload applies, in both workers, and no
// worker is restarted.

import t from 'tap';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';
import { prepareDeadlineMs } from '../../src/workers/prepare-deadline.js';

const fx = workersFixture(t);

/** A spec of `paths` operations, each with its own 20-property body schema (~5 ms of compile each here), and GET /headers, the probe's path. */
function slowSpec(paths: number): string {
  const doc: { openapi: string; info: object; paths: Record<string, unknown> } = { openapi: '3.0.3', info: { title: 'slow', version: '1' }, paths: { '/headers': { get: { responses: { '200': { description: 'ok' } } } } } };
  for (let i = 0; i < paths; i++) {
    const properties = Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`f${j}`, j % 2 === 0 ? { type: 'string', maxLength: 64, pattern: '^[a-z0-9-]+$' } : { type: 'integer', minimum: 0 }]));
    doc.paths[`/r${i}`] = { post: { requestBody: { content: { 'application/json': { schema: { type: 'object', properties, additionalProperties: false } } } }, responses: { '200': { description: 'ok' } } } };
  }
  return JSON.stringify(doc);
}

function reload(port: number): Promise<{ status: number; body: { message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as { message?: string } }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('workers: 2: a worker that takes longer than 10 s to prepare a large spec is waited for, not killed', { timeout: 120_000 }, async (t) => {
  const spec = join(t.testdir(), 'slow.json');
  await writeFile(spec, slowSpec(1000));
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}`, openapi: `{spec: ${spec}, mode: shadow}` }, extraYaml: 'workers: 2', startTimeoutMs: 60_000 });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const statuses = (path: string) => Promise.all([0, 1, 2, 3].map(async () => (await probeRequest(sidecar.inboundPort, fx.probe, path)).status));
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 60_000, 'both workers ready', sidecar.process);
  t.same(await statuses('/status/204'), [204, 204, 204, 204], 'shadow: a path the spec does not document reaches the app');
  const before = (await workersOf(sidecar)).workers.map((w) => w.pid);

  // enforce from now on: one worker is held from the moment the primary asks for the prepare
  await writeFile(sidecar.configFile, (await readFile(sidecar.configFile, 'utf8')).replace('mode: shadow', 'mode: enforce'));
  const from = sidecar.process!.lines.length;
  const answered = reload(sidecar.adminPort);
  const asked = await sidecar.process!.waitFor((line) => sidecar.process!.lines.indexOf(line) >= from && typeof line.prepareMs === 'number', 60_000);
  const askedAt = performance.now();
  process.kill(before[0] as number, 'SIGSTOP');
  t.equal(asked.prepareMs, prepareDeadlineMs(asked.primaryMs as number, 2, asked.cores as number), `each worker has ${String(asked.prepareMs)} ms: ${String(asked.msg)}`);
  // the hold below ends 500 ms past the asks' 10 s; the worker then compiles what took the
  // primary primaryMs: within the bound (10 s + 3 x primaryMs) when that is 500 ms or more
  t.ok((asked.primaryMs as number) >= 500, `the spec took the primary ${String(asked.primaryMs)} ms (500 or more: the test's margin; a faster machine needs a larger spec)`);
  // held past the asks' own 10 s; then it compiles the spec, which took the primary seconds
  await waitFor(async () => performance.now() - askedAt >= 10_500, 15_000, '10.5 s from the prepare ask');
  try {
    process.kill(before[0] as number, 'SIGCONT');
  } catch {
    // killed already, as a worker past its bound is: the reload's answer says so below
  }
  const result = await answered;
  t.equal(result.status, 200, `the reload applies (${result.body.message ?? ''})`);
  const after = await workersOf(sidecar);
  t.same(after.workers.map((w) => w.pid).sort(), [...before].sort(), 'no worker was restarted');
  t.ok(after.workers.every((w) => w.generation === 2), 'both run generation 2');
  t.same(await statuses('/status/204'), [404, 404, 404, 404], 'enforce in both workers: refused');
});

/**
 * A reload with the workers `pids` held until 300 ms past their prepare bound, let go while the
 * primary's ping (2 s) waits. Held from just before the reload: with no spec a worker answers
 * its prepare within a millisecond of the primary's log line, before a stop sent then lands.
 */
async function lateRound(sidecar: RunningSidecar, pids: readonly number[]) {
  const from = sidecar.process!.lines.length;
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const answered = reload(sidecar.adminPort);
  const asked = await sidecar.process!.waitFor((line) => sidecar.process!.lines.indexOf(line) >= from && typeof line.prepareMs === 'number', 30_000);
  const askedAt = performance.now();
  await waitFor(async () => performance.now() - askedAt >= (asked.prepareMs as number) + 300, 30_000, 'past the prepare bound');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // killed already: the answer says so
    }
  }
  return answered;
}

/** Two workers with no spec, both ready, stopped with the test; their pids, and a reload waiting in the file (log.level warn). */
async function twoWorkersWithAReload(t: Tap.Test): Promise<{ sidecar: RunningSidecar; before: number[] }> {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 60_000, 'both workers ready', sidecar.process);
  const before = (await workersOf(sidecar)).workers.map((w) => w.pid);
  await writeFile(sidecar.configFile, (await readFile(sidecar.configFile, 'utf8')).replace('  level: info', '  level: warn'));
  return { sidecar, before };
}

t.test('workers: 2: every worker late two rounds in a row is kept both times: a bound too short for all, not all hung', { timeout: 120_000 }, async (t) => {
  const { sidecar, before } = await twoWorkersWithAReload(t);
  for (const round of ['first', 'second']) {
    const answer = await lateRound(sidecar, before);
    t.equal(answer.status, 503, `${round} round aborted (${answer.body.message ?? ''})`);
    t.same((await workersOf(sidecar)).workers.map((w) => w.pid).sort(), [...before].sort(), `${round} round: no worker restarted`);
  }
});

t.test('workers: 2: a worker past its prepare bound that answers a ping is kept once (late, not stuck); late again at the next reload, it is restarted', { timeout: 120_000 }, async (t) => {
  const { sidecar, before } = await twoWorkersWithAReload(t);
  const lateReload = () => lateRound(sidecar, [before[0] as number]);
  const first = await lateReload();
  t.equal(first.status, 503, `the reload is aborted (${first.body.message ?? ''})`);
  t.match(first.body.message, /did not prepare the reload: .*\(it answers pings: kept, still preparing; it drops this config when done\)/, 'saying the late worker is kept');
  const kept = await workersOf(sidecar);
  t.same(kept.workers.map((w) => w.pid).sort(), [...before].sort(), 'no worker was restarted');
  t.ok(kept.workers.every((w) => w.generation === 1), 'both on the kept generation');
  // late again: a prepare that never ends (its loop turning) would hold every later one behind it
  const second = await lateReload();
  t.equal(second.status, 503, `aborted again (${second.body.message ?? ''})`);
  t.notMatch(second.body.message, /kept, still preparing/, 'not kept this time');
  await waitFor(async () => !(await workersOf(sidecar)).workers.some((w) => w.pid === before[0]), 15_000, 'the twice-late worker restarted', sidecar.process);
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 30_000, 'its replacement ready', sidecar.process);
  const again = await reload(sidecar.adminPort);
  t.equal(again.status, 200, `the same reload again: 200 (${again.body.message ?? ''})`);
  await waitFor(async () => (await workersOf(sidecar)).workers.every((w) => w.generation === 2), 10_000, 'both on generation 2');
});
