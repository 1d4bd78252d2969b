// A reload whose round is held (one worker stopped before it prepared) while SIGTERM stops a
// sidecar of `workers: 2`, the held worker let go after the other one has drained and exited:
// the round must not go on to commit a config into a sidecar that is shutting down, count the
// drained worker as one that "did not confirm", kill the held worker while it drains ('restarting
// worker N', and nothing restarts: the primary is stopping) and answer 500 reload_partial. It
// answers 503 reload_aborted saying the sidecar is shutting down, and logs it at warn, as one
// process does (not as a failed reload), and every worker ends by its own drain (no kill, no
// 'worker exited during the drain' warning).
// Deterministic: the order is held by SIGSTOP/SIGCONT and log lines, not by timing; the drain
// timeout (20 s) is far beyond what the test takes, so no kill at its end comes into it.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpPost, startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

t.test('a reload held across SIGTERM: 503 shutting down, no worker killed', { timeout: 60_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2\ndrainTimeout: 20s' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening), 15_000, 'both workers listening', sidecar.process);
  const [held, other] = (await workersOf(sidecar)).workers;
  const heldPid = held?.pid as number;
  const otherPid = other?.pid as number;
  await writeFile(sidecar.configFile, (await readFile(sidecar.configFile, 'utf8')).replace('  timeout: 5s\n', '  timeout: 6s\n'));
  // the round waits on this one's prepare (its 10 s ask timeout is not reached: it is let go first)
  process.kill(heldPid, 'SIGSTOP');
  t.teardown(() => {
    if (!gone(heldPid)) process.kill(heldPid, 'SIGKILL');
  });
  const outcome = httpPost(sidecar.adminPort, '/reload');
  const lines = sidecar.process.lines;
  const said = (worker: number | undefined, start: string) => lines.some((l) => l.worker === worker && typeof l.msg === 'string' && l.msg.startsWith(start));
  await waitFor(async () => said(other?.id, 'config generation 2 prepared'), 10_000, 'the round in flight (the other worker prepared)', sidecar.process);
  const exit = sidecar.stop('SIGTERM');
  // the other worker drains (nothing in flight) and exits while the round still waits
  await waitFor(async () => gone(otherPid), 10_000, 'the other worker drained and exited', sidecar.process);
  process.kill(heldPid, 'SIGCONT');
  const answer = await outcome;
  t.equal(answer.status, 503, `503, not ${answer.status} ${answer.body}`);
  t.match(JSON.parse(answer.body), { error: 'reload_aborted', message: /shutting down/ }, 'reload_aborted: the sidecar is shutting down');
  t.equal(await exit, 0, 'SIGTERM: exit 0');
  const messages = lines.map((l) => String(l.msg));
  t.notOk(messages.some((m) => m.startsWith('restarting worker')), 'no worker "restarted" (killed) while the sidecar stops');
  t.notOk(messages.some((m) => m.startsWith('worker exited during the drain')), 'every worker ended by its own drain');
  t.notOk(messages.some((m) => m.startsWith('config reload partly confirmed')), 'not told as a partly confirmed reload');
  // as one process tells a reload during its drain: a warning, not a failed reload (nor counted as one)
  // and the line says the reasons the answer gives (one line: each worker's, then the stop's)
  const reasons = (JSON.parse(answer.body) as { message: string }).message.split('\n');
  t.equal(reasons.at(-1), 'the sidecar is draining (shutting down): the reload is not run');
  t.ok(lines.some((l) => l.level === 40 && l.msg === `config reload asked for while draining: ${reasons.join('; ')}`), 'the drain\'s warning, with its reasons');
  t.notOk(messages.some((m) => m.startsWith('config reload aborted')), 'not logged as an aborted reload');
});
