// A POST /reload whose round is still in flight when SIGTERM stops a sidecar of `workers: 2`
// gets its outcome as JSON (503 reload_aborted, naming the worker that never prepared), not a
// socket hang-up: the admin server used to cut every connection the moment the sidecar stopped,
// and the round ended (its last worker killed at the drain timeout) just before that, with the
// answer not yet out (src/http/graceful-close.ts). Real processes: a sidecar with two workers,
// one of them stopped (SIGSTOP) so the round waits on it; drainTimeout 2 s.

import t from 'tap';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** POST /reload: the status and body, or the error that ended it (`hang-up: ...`). */
function reload(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

t.test('a reload in flight at SIGTERM is answered, not cut', { timeout: 60_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2\ndrainTimeout: 2s' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening), 15_000, 'both workers listening', sidecar.process);
  const [stuck, other] = (await workersOf(sidecar)).workers;
  await writeFile(sidecar.configFile, (await readFile(sidecar.configFile, 'utf8')).replace('  timeout: 5s\n', '  timeout: 6s\n'));
  // the round waits on this one's prepare until the drain's end kills it
  process.kill(stuck?.pid as number, 'SIGSTOP');
  const outcome = reload(sidecar.adminPort);
  const lines = sidecar.process.lines;
  await waitFor(() => lines.some((l) => l.worker === other?.id && typeof l.msg === 'string' && l.msg.startsWith('config generation 2 prepared')), 10_000, 'the round in flight (the other worker prepared)', sidecar.process);
  const exit = sidecar.stop('SIGTERM');
  const answer = await outcome;
  t.notOk('error' in answer, `an answer, not ${'error' in answer ? answer.error : ''}`);
  if ('status' in answer) {
    t.equal(answer.status, 503, '503');
    t.match(JSON.parse(answer.body), { error: 'reload_aborted', message: new RegExp(`worker ${stuck?.id} \\(pid ${stuck?.pid}\\) did not prepare the reload`) }, 'reload_aborted, naming the worker');
  }
  t.equal(await exit, 0, 'SIGTERM: exit 0');
});
