// A sidecar away through a whole root rotation, longer than its SVID lasts: up at `root add`
// (it learns both roots and stores them with its SVID in identity.dir), stopped before `root
// activate`, started again after `root retire` with a fresh join token, its configured
// identity.ca.bundle still the install-time copy naming the old root alone. Its stored SVID has
// expired, so no set vouched for the CA any more, and the start ended at "the CA's certificate
// does not chain to identity.ca.bundle; this will not mend itself" though the folder held the
// new root. Now the CA's bundle is fetched through the one stored with the last set (our own
// 0700 folder, as a stored set is trusted), once, and the token's request goes through. Real CA
// (4-second leaves), real sidecar processes, the CA's own waits between the steps. Only a stored
// bundle holding a root of the configured one is used: a sidecar moved to another CA of the same
// trust domain (its folder kept, its configured bundle and token the new CA's) whose URL still
// answers with the old CA's certificate is refused before its token is sent.

import t from 'tap';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchSidecar, metricValue, startMeshCa, waitFor } from '../helpers/mesh.js';
import { caToken } from '../../src/ca/commands.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { memoryLogger, runCli, startTestCa } from '../helpers/ca.js';
import { writeFile } from 'node:fs/promises';
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
  t.ok(back.process.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith("the CA's certificate does not chain to identity.ca.bundle, but to the bundle stored with an earlier SVID, which holds a root of it")), 'the log says how, and to update identity.ca.bundle');
});

// Up through the whole rotation, then away longer than its SVID lasts: the two sets the store
// keeps hold the new root only, and the configured bundle the old one alone; the store's note of
// the roots its sets trusted (old, then old and new, then new) is the trail that vouches.
t.test('a sidecar that ran through the whole rotation, then was away longer than its SVID lasts, starts with a fresh token', { timeout: 90_000 }, async (t) => {
  const dir = t.testdir();
  const ca = await startMeshCa(dir, { maxTtl: '4s' });
  t.teardown(() => ca.stop());
  const installed = join(dir, 'installed-bundle.pem');
  await copyFile(ca.bundlePath, installed);
  const withInstalledBundle = { ...ca, bundlePath: installed };
  const identityDir = join(dir, 'id-billing');
  const spec = { service: 'billing', ttl: '4s', bundleRefresh: '500ms', identityDir, upstreams: [{ name: 'x', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/x' }] };
  const untilAllowed = async () => {
    const wait = Date.parse((await caStatus(ca.caDir)).rootRotation.next?.allowedFrom ?? '') - Date.now();
    if (wait > 0) await sleep(wait + 50);
  };
  const first = await (await launchSidecar(withInstalledBundle, spec)).ready();
  t.teardown(() => first.stop('SIGKILL'));
  const roots = async () => metricValue((await first.admin('/metrics')).body, 'meshcar_identity_bundle_roots');
  t.equal((await runCli(['ca', 'root', 'add', '--dir', ca.caDir])).code, 0, 'root add');
  await waitFor(async () => (await roots()) === 2, 10_000, 'both roots learned');
  await untilAllowed();
  t.equal((await runCli(['ca', 'root', 'activate', '--dir', ca.caDir])).code, 0, 'root activate');
  await untilAllowed();
  t.equal((await runCli(['ca', 'root', 'retire', '--dir', ca.caDir])).code, 0, 'root retire');
  await waitFor(async () => (await roots()) === 1, 10_000, 'the old root dropped');
  // two saves after it (renewals): the store's two sets name the new root alone
  await waitFor(async () => certificates(await readFile(join(identityDir, 'bundle.pem'), 'utf8').catch(() => '')) === 1, 10_000, 'the new root alone stored');
  const view = async () => JSON.parse((await first.admin('/identity')).body) as { serial: string; notAfter: string };
  const seen = new Set([(await view()).serial]);
  await waitFor(async () => seen.add((await view()).serial).size >= 3, 15_000, 'two renewals after the retire');
  const notAfter = Date.parse((await view()).notAfter);
  await first.stop('SIGKILL');
  await sleep(Math.max(0, notAfter - Date.now()) + 100);

  const token = join(dir, 'billing.token');
  t.equal((await runCli(['ca', 'token', '--dir', ca.caDir, '--service', 'billing', '--out', token])).code, 0, 'a fresh token');
  const again = await launchSidecar({ ...withInstalledBundle, tokenFile: async () => token }, spec);
  t.teardown(() => again.stop('SIGKILL'));
  const back = await again.ready(20_000);
  t.equal(metricValue((await back.admin('/metrics')).body, 'meshcar_identity_bundle_roots'), 1, 'started, trusting the new root');
});

t.test("a stored bundle of another CA does not override the configured one: refused before the token is sent", { timeout: 60_000 }, async (t) => {
  const ORDERS = 'spiffe://mesh.local/svc/orders';
  const oldCa = await startTestCa({ maxTtlMs: 2_000, defaultTtlMs: 2_000 });
  const newCa = await startTestCa();
  t.teardown(async () => {
    await oldCa.close();
    await newCa.close();
  });
  const dir = t.testdir();
  const identityDir = join(dir, 'identity');
  const oldToken = join(dir, 'old.token');
  await writeFile(oldToken, await caToken(oldCa.dir, 'orders', 600_000, false));
  const logger = memoryLogger([], 'debug');
  const first = await obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: identityDir, ca: { url: oldCa.server.url, bundlePath: join(oldCa.dir, 'bundle.pem'), tokenPath: oldToken }, ttlMs: 2_000, logger });
  const notAfter = first.identity.current().notAfter.getTime();
  first.stop();
  // the stored set expires (its end is known: waited for, not guessed)
  await sleep(Math.max(0, notAfter - Date.now()) + 100);
  // moved to the new CA: its bundle and its token; the URL still answers with the old CA's certificate
  const newToken = join(dir, 'new.token');
  await writeFile(newToken, await caToken(newCa.dir, 'orders', 600_000, false));
  const tokensBefore = oldCa.logLines.filter((l) => JSON.stringify(l).includes('token')).length;
  const err = await obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: identityDir, ca: { url: oldCa.server.url, bundlePath: join(newCa.dir, 'bundle.pem'), tokenPath: newToken }, logger, startupTimeoutMs: 3_000 }).then(
    (running) => {
      running.stop();
      return undefined;
    },
    (e: unknown) => e as { code?: string },
  );
  t.equal(err?.code, 'ca_mismatch', 'refused: the configured bundle does not vouch for the server');
  t.equal(oldCa.logLines.filter((l) => JSON.stringify(l).includes('token')).length, tokensBefore, 'the token never reached it');
});
