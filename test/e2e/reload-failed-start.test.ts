// A reload asked for while the sidecar starts waits for the start; when the start fails (here
// the CA behind identity.ca.url turns out to be another mesh's: ca_mismatch, exit 1), the reload
// is not run: POST /reload answers 503 reload_aborted, as during a shutdown, and nothing logs
// "config reloaded". It used to run against the sidecar that never started and answer 200
// `{"applied": []}`, logged "config reloaded" (and counted a success) after "could not start",
// or, a moment later, 400 config_invalid for a file with nothing wrong in it.

import t from 'tap';
import { once } from 'node:events';
import { join } from 'node:path';
import { httpPost, launchSidecar, startMeshCa } from '../helpers/mesh.js';
import { startTcpGate } from '../helpers/tcp-gate.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);

/** POST /reload on an admin port. */
const postReload = (port: number) => httpPost(port, '/reload');

t.test('a reload waiting for a start that fails is not run: 503 reload_aborted', async (t) => {
  const other = await startMeshCa(join(t.testdir(), 'other'));
  t.teardown(() => other.stop());
  // the sidecar's first contact waits here until the test lets it through, to the wrong CA
  const gate = await startTcpGate();
  t.teardown(() => gate.stop());
  gate.hold();
  const sidecar = await launchSidecar(mesh.ca, { service: 'payments', inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, caUrl: `https://127.0.0.1:${gate.port}`, logLevel: 'debug' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await gate.waitForConnections(1);

  const first = postReload(sidecar.adminPort);
  // a second one joins the next reload and says so: the first is in, waiting for the start
  const second = postReload(sidecar.adminPort).catch((err: Error) => ({ status: 0, body: err.message }));
  await sidecar.process.waitFor((line) => line.msg === 'reload asked for while one runs: joins the next one', 10_000);
  gate.open(Number(new URL(other.url).port));

  const answer = await first;
  t.equal(answer.status, 503, `503 (${answer.body})`);
  const body = JSON.parse(answer.body) as { error: string; message: string };
  t.equal(body.error, 'reload_aborted');
  t.match(body.message, /the sidecar did not start: the reload is not run/);
  const later = await second;
  t.not(later.status, 200, `the one that joined is not applied either (${later.status} ${later.body})`);
  await sidecar.process.waitFor((line) => typeof line.msg === 'string' && line.msg.startsWith('could not start'), 10_000);
  t.notOk(sidecar.process.lines.some((line) => line.msg === 'config reloaded'), 'no "config reloaded" line');
  const child = sidecar.process.child;
  if (child.exitCode === null) await once(child, 'exit', { signal: AbortSignal.timeout(10_000) });
  t.equal(child.exitCode, 1, 'the failed start exits 1, by itself');
});
