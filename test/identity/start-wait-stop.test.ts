// A sidecar whose first SVID starts in its future (the CA's clock ahead, by less than the 5
// minutes it accepts) waits for that start before it listens (src/identity/valid-soon.ts). A
// SIGTERM during that wait ends it at once: it waited out the start first, up to 5 minutes
// (the review measured 178 s), past any Kubernetes grace period. The real CA process runs 60 s
// ahead (helpers/clock-ahead.cjs).

import t from 'tap';
import { join } from 'node:path';
import { execFileAsync } from '../helpers/ca.js';
import { startSkewedMeshCa, launchSidecar, type MeshCa } from '../helpers/mesh.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const AHEAD_MS = 60_000;

let ca: MeshCa;
t.before(async () => {
  ca = await startSkewedMeshCa(t.testdir(), AHEAD_MS);
});
t.teardown(() => ca?.stop());

t.test('SIGTERM while the first SVID has not started yet: the sidecar ends at once, not at the start', async (t) => {
  const token = join(ca.dir, 'orders.token');
  await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', ca.caDir, '--service', 'orders', '--single-use', '--out', token]);
  const launched = await launchSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' }, ttl: '10s', token });
  t.teardown(() => launched.stop('SIGKILL'));
  const warned = await launched.process.waitFor((l) => /is not valid before .*the CA's clock is ahead of this host's by at least/.test(String(l.msg)));
  const validFrom = Date.parse(String(warned.validFrom));
  t.ok(validFrom - Date.now() > 30_000, `the SVID starts ${Math.round((validFrom - Date.now()) / 1000)} s from now`);
  const asked = Date.now();
  const code = await launched.stop('SIGTERM');
  // the helper's stop sends SIGKILL 15 s after the SIGTERM: a process still waiting then is killed
  const took = Date.now() - asked;
  t.ok(took < 10_000 && Date.now() < validFrom, `ended ${took} ms after SIGTERM, long before the SVID's start`);
  t.equal(code, 0, 'exit 0, as for any stop (not killed)');
});
