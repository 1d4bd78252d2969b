// A sidecar away from just after `root add` until after `root retire`: its stored SVID has
// expired, its configured identity.ca.bundle (installed with the mesh) holds the old root
// alone, but its stored bundle learned the new root from the CA at `root add`. Restarted with
// a join token made after the rotation, it starts and calls its upstream: the stored bundle
// is trusted for the CA's certificate, as renewals trust the current SVID's. Before, the start
// trusted only identity.ca.bundle, met a CA whose certificate chains to the new root alone,
// and exited 1 (ca_mismatch) at every restart, though the README says only a sidecar away
// through all three steps needs a new bundle (a review of trust transitions).

import t from 'tap';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { X509Certificate } from 'node:crypto';
import { launchSidecar, metricValue, startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { runCli } from '../helpers/ca.js';
import { caStatus } from '../../src/ca/status.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t, { maxTtl: '5s' });

const bundleRoots = async (s: RunningSidecar) => metricValue((await s.admin('/metrics')).body, 'meshcar_identity_bundle_roots');

async function untilAllowed(): Promise<void> {
  const status = await caStatus(mesh.ca.caDir);
  const wait = Date.parse(status.rootRotation.next?.allowedFrom ?? '') - Date.now();
  if (wait > 0) await sleep(wait + 50);
}

async function ca(...args: string[]): Promise<void> {
  const result = await runCli(['ca', ...args, '--dir', mesh.ca.caDir]);
  if (result.code !== 0) throw new Error(`ca ${args.join(' ')}: ${result.stdout}${result.stderr}`);
}

t.test('away from root add to root retire: restarts with a new token and the bundle it had learned', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, bundleRefresh: '500ms' });
  t.teardown(() => orders.stop());
  const toOrders = [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }];
  const installedBundle = join(mesh.ca.dir, 'installed-bundle.pem');
  await copyFile(mesh.ca.bundlePath, installedBundle);
  const identityDir = join(mesh.ca.dir, 'id-billing-away');
  const spec = { service: 'billing', upstreams: toOrders, bundleRefresh: '500ms', bundle: installedBundle, identityDir };
  const billing = await startSidecar(mesh.ca, spec);
  await ca('root', 'add');
  await waitFor(async () => (await bundleRoots(billing)) === 2 && (await bundleRoots(orders)) === 2, 15_000, 'both sidecars trust both roots');
  await waitFor(async () => (await readFile(join(identityDir, 'bundle.pem'), 'utf8')).split('BEGIN CERTIFICATE').length === 3, 10_000, "billing's stored bundle holds both roots");
  await billing.stop();
  const stoppedLeaf = new X509Certificate(await readFile(join(identityDir, 'svid.crt'), 'utf8'));

  await untilAllowed();
  await ca('root', 'activate');
  await untilAllowed();
  await ca('root', 'retire');
  await waitFor(async () => (await bundleRoots(orders)) === 1, 15_000, 'orders trusts the new root alone');
  // a token of the new root's key (the old one went with the retire)
  const token = join(mesh.ca.dir, 'billing-after.token');
  await ca('token', '--service', 'billing', '--ttl', '1h', '--out', token);
  const wait = Date.parse(stoppedLeaf.validTo) - Date.now();
  if (wait > 0) await sleep(wait + 100);
  t.notOk(new X509Certificate(await readFile(installedBundle, 'utf8')).checkIssued(new X509Certificate(await readFile(join(mesh.ca.caDir, 'root.crt'), 'utf8'))), 'the configured bundle does not hold the root the CA now answers under');

  const back = await launchSidecar(mesh.ca, { ...spec, token });
  let restarted: RunningSidecar;
  try {
    restarted = await back.ready();
  } catch (err) {
    await back.stop('SIGKILL').catch(() => undefined);
    throw err;
  }
  t.teardown(() => restarted.stop());
  t.equal(await bundleRoots(restarted), 1, 'it holds the new root alone');
  const res = await request(restarted.outboundPort, { path: '/headers', headers: { host: 'orders' } });
  t.equal(res.status, 200, 'and calls orders');
});
