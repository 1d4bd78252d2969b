// A sidecar away through a whole root rotation, longer than its SVID lasts: up at `root add`
// (it learns both roots and stores them with its SVID in identity.dir), stopped before `root
// activate`, started again after `root retire` with a fresh join token, its configured
// identity.ca.bundle still the install-time copy naming the old root alone. Its stored SVID has
// expired, so no set vouched for the CA any more, and the start ended at "the CA's certificate
// does not chain to identity.ca.bundle; this will not mend itself" though the folder held the
// new root. Now the CA's bundle is fetched through the one stored with the last set (our own
// 0700 folder, as a stored set is trusted), once, and the token's request goes through. Real CA
// (4-second leaves), real sidecar processes, the CA's own waits between the steps.

import t from 'tap';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchSidecar, metricValue, startMeshCa, waitFor } from '../helpers/mesh.js';
import { runCli } from '../helpers/ca.js';
import { caStatus } from '../../src/ca/status.js';

const certificates = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;

t.test('a sidecar away from before root activate to after root retire starts with a fresh token', { timeout: 90_000 }, async (t) => {
  const dir = t.testdir();
  const ca = await startMeshCa(dir, { maxTtl: '4s' });
  t.teardown(() => ca.stop());
  // the bundle as installed with the sidecar, before any rotation: the old root alone
  const installed = join(dir, 'installed-bundle.pem');
  await copyFile(ca.bundlePath, installed);
  const withInstalledBundle = { ...ca, bundlePath: installed };
  const identityDir = join(dir, 'id-billing');
  const spec = { service: 'billing', ttl: '4s', bundleRefresh: '500ms', identityDir, upstreams: [{ name: 'x', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/x' }] };
  const untilAllowed = async () => {
    // the CA's own wait between the steps (its status says when the next is allowed)
    const wait = Date.parse((await caStatus(ca.caDir)).rootRotation.next?.allowedFrom ?? '') - Date.now();
    if (wait > 0) await sleep(wait + 50);
  };

  const first = await (await launchSidecar(withInstalledBundle, spec)).ready();
  t.teardown(() => first.stop('SIGKILL'));
  t.equal((await runCli(['ca', 'root', 'add', '--dir', ca.caDir])).code, 0, 'root add');
  await waitFor(async () => metricValue((await first.admin('/metrics')).body, 'meshcar_identity_bundle_roots') === 2, 10_000, 'both roots learned');
  await waitFor(async () => certificates(await readFile(join(identityDir, 'bundle.pem'), 'utf8').catch(() => '')) === 2, 10_000, 'both roots stored with the SVID');
  await first.stop('SIGKILL');

  await untilAllowed();
  t.equal((await runCli(['ca', 'root', 'activate', '--dir', ca.caDir])).code, 0, 'root activate');
  await untilAllowed();
  t.equal((await runCli(['ca', 'root', 'retire', '--dir', ca.caDir])).code, 0, 'root retire');
  const token = join(dir, 'billing.token');
  t.equal((await runCli(['ca', 'token', '--dir', ca.caDir, '--service', 'billing', '--out', token])).code, 0, 'a fresh token');

  const again = await launchSidecar({ ...withInstalledBundle, tokenFile: async () => token }, spec);
  t.teardown(() => again.stop('SIGKILL'));
  const back = await again.ready(20_000);
  t.equal(metricValue((await back.admin('/metrics')).body, 'meshcar_identity_bundle_roots'), 1, 'started, trusting the new root alone');
  t.ok(back.process.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith("the CA's certificate does not chain to identity.ca.bundle, but to the bundle stored with the last SVID")), 'the log says how, and to update identity.ca.bundle');
});
