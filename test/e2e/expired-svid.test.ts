// A renewal that keeps failing until after the SVID's end, for real: a CA behind a TCP gate
// that the test closes, sidecars with 6 s SVIDs. Past the end the sidecar still holds (and
// serves) its SVID, but every peer refuses it: /ready says 503 {"status":"expired"}, the
// metrics show the failures and the end, /identity says why the renewals fail, and once the CA
// is back the renewal lands and /ready is 200 again. With workers: 2, a worker restarted meanwhile starts on the SVID every other
// worker serves (it refused it as expired and crash-looped into a minute's wait), so the pod
// is ready as soon as the renewal lands. The same holds for identity.files whose intermediate
// ends before the leaf: the SVID expires at the intermediate's end, and a worker restarted after
// it starts on what the others serve.

import t from 'tap';
import { launchSidecar, metricValue, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { startTcpGate, type TcpGate } from '../helpers/tcp-gate.js';
import { workersOf } from '../helpers/workers.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkAdmin } from '../../src/doctor/local.js';
import { formatResult } from '../../src/doctor/result.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import { makePki } from '../helpers/pki.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const mesh = meshFixture(t);
t.jobs = 2;

interface Identity {
  serial: string;
  notAfter: string;
  renewalFailing: { failures: number; since: string; lastError: string } | null;
}

/** A sidecar whose CA is reached through a gate the test holds open, then closes. */
async function gatedSidecar(t: Tap.Test, service: string, workers: number, namedPorts = false, ttl = '6s'): Promise<{ sidecar: RunningSidecar; gate: TcpGate; caPort: number }> {
  const gate = await startTcpGate();
  t.teardown(() => gate.stop());
  const caPort = Number(new URL(mesh.ca.url).port);
  gate.open(caPort);
  const launched = await launchSidecar(mesh.ca, { service, ttl, caUrl: `https://127.0.0.1:${gate.port}`, inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, extraYaml: `workers: ${workers}`, namedPorts });
  const sidecar = await launched.ready();
  t.teardown(() => sidecar.stop('SIGKILL'));
  return { sidecar, gate, caPort };
}

const identityOf = async (sidecar: RunningSidecar): Promise<Identity> => JSON.parse((await sidecar.admin('/identity')).body) as Identity;

/** Cuts the CA off and waits for the SVID's end: /ready must say so then. */
async function expireWithCaAway(t: Tap.Test, sidecar: RunningSidecar, gate: TcpGate): Promise<Identity> {
  t.equal((await sidecar.admin('/ready')).status, 200, '/ready 200 while the SVID is valid');
  // The gate closes just after a renewal has been swapped in, so none is under way: one whose
  // answer crossed the gate as it closed would still be saved and swapped in afterwards, and the
  // SVID read below would not be the one that expires.
  const first = await identityOf(sidecar);
  await waitFor(async () => (await identityOf(sidecar)).serial !== first.serial, 10_000, 'a renewal swapped in', sidecar.process);
  gate.close({ cut: true });
  const held = await identityOf(sidecar);
  const end = Date.parse(held.notAfter);
  await waitFor(async () => (await sidecar.admin('/ready')).status === 503, end - Date.now() + 5_000, '/ready 503 once the SVID has expired', sidecar.process);
  t.ok(Date.now() >= end, `not before the SVID's end (${held.notAfter})`);
  const ready = await sidecar.admin('/ready');
  t.same({ status: ready.status, body: JSON.parse(ready.body) }, { status: 503, body: { status: 'expired', notAfter: held.notAfter } }, '/ready: 503 expired, with when');
  t.equal(held.renewalFailing, null, '/identity: no renewal failing before the CA was cut off');
  const failing = await identityOf(sidecar);
  t.equal(failing.serial, held.serial, 'the old SVID is kept (nothing better to hold)');
  t.ok((failing.renewalFailing?.failures ?? 0) >= 1 && Date.parse(failing.renewalFailing?.since ?? '') <= Date.now(), `/identity: the failures since the last success (${JSON.stringify(failing.renewalFailing)})`);
  t.match(failing.renewalFailing?.lastError, /^the CA at https:\/\/127\.0\.0\.1:\d+ is unreachable: /, '/identity: and why they fail');
  const metrics = (await sidecar.admin('/metrics')).body;
  t.ok((metricValue(metrics, 'meshcar_identity_renewals_total{result="failure"}') ?? 0) >= 1, 'failed renewals counted');
  t.ok(metrics.includes(` ${end / 1000}\n`) && metrics.includes('meshcar_identity_cert_expiry_timestamp_seconds{'), 'the expiry gauge shows the past end');
  return held;
}

/**
 * Kills a worker while the SVID has expired: its replacement listens on the SVID the other
 * worker serves (`serial`), within a start's time, after one restart and no refusal.
 */
async function restartWorkerOnExpired(t: Tap.Test, sidecar: RunningSidecar, serial: string): Promise<void> {
  const victim = (await workersOf(sidecar)).workers[0]?.pid as number;
  process.kill(victim, 'SIGKILL');
  await waitFor(
    async () => {
      const now = (await workersOf(sidecar)).workers;
      return now.length === 2 && now.every((w) => w.listening && w.pid !== victim);
    },
    10_000,
    'the replacement listening',
    sidecar.process,
  );
  const after = await workersOf(sidecar);
  t.ok(after.workers.every((w) => w.serial === serial), 'both serve the SVID the primary holds');
  t.equal(after.restarts, 1, 'one restart, no crash loop');
  t.notOk(sidecar.process?.lines.some((l) => /^worker could not start/.test(String(l.msg))), 'no worker refused the SVID');
}

/** Opens the gate again: the renewal lands (backoff is at most 30 s) and /ready is 200. */
async function caBack(t: Tap.Test, sidecar: RunningSidecar, gate: TcpGate, caPort: number, held: Identity): Promise<void> {
  gate.open(caPort);
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 45_000, '/ready 200 once the renewal lands', sidecar.process);
  const renewed = await identityOf(sidecar);
  t.not(renewed.serial, held.serial, 'a new SVID serves');
  t.equal(renewed.renewalFailing, null, '/identity: nothing failing once the renewal landed');
}

t.test('one process: /ready 503 expired while the renewal fails past the end, 200 once it lands', async (t) => {
  // an admin port named in the file: doctor finds the running sidecar by its config
  const { sidecar, gate, caPort } = await gatedSidecar(t, 'expiring', 1, true);
  const held = await expireWithCaAway(t, sidecar, gate);
  const doctor = formatResult(await checkAdmin(await loadSidecarConfig(sidecar.configFile)));
  t.match(doctor, /^✗ admin .*: the running sidecar's SVID has expired and its renewal keeps failing; peers refuse it \(\/ready 503 .*"status":"expired".*\); \d+ renewal attempts? failed since \S+, the latest: the CA at https:\/\/127\.0\.0\.1:\d+ is unreachable: .* — fix: its log says why the renewal fails/, `doctor says so, and why: ${doctor}`);
  await caBack(t, sidecar, gate, caPort, held);
});

t.test('workers: 2: a worker restarted while the SVID has expired starts on it; ready as soon as the renewal lands', async (t) => {
  const { sidecar, gate, caPort } = await gatedSidecar(t, 'expiring-workers', 2);
  const held = await expireWithCaAway(t, sidecar, gate);
  await restartWorkerOnExpired(t, sidecar, held.serial);
  t.equal(JSON.parse((await sidecar.admin('/ready')).body).status, 'expired', '/ready still says expired');
  await caBack(t, sidecar, gate, caPort, held);
  const renewed = await identityOf(sidecar);
  await waitFor(async () => (await workersOf(sidecar)).workers.every((w) => w.serial === renewed.serial), 5_000, 'both workers on the new SVID', sidecar.process);
  t.pass('both workers serve the renewed SVID');
});

t.test('renewals failing while the SVID is still valid: /identity and doctor say why, the SVID serves on', async (t) => {
  // 20 s SVIDs: renewal due at 10-14 s, some 6 s of failing renewals before the end
  const { sidecar, gate, caPort } = await gatedSidecar(t, 'failing-early', 1, true, '20s');
  gate.close({ cut: true });
  let failing: Identity | undefined;
  await waitFor(async () => (failing = await identityOf(sidecar)).renewalFailing !== null, 20_000, '/identity: a renewal failing', sidecar.process);
  t.match(failing?.renewalFailing?.lastError, /^the CA at https:\/\/127\.0\.0\.1:\d+ is unreachable: /, '/identity: why');
  const doctor = formatResult(await checkAdmin(await loadSidecarConfig(sidecar.configFile)));
  t.ok(Date.parse(failing?.notAfter ?? '') > Date.now(), 'checked before the SVID ends');
  t.match(doctor, /^! admin .*: the running sidecar is ready, but its certificate is not being renewed; \d+ renewal attempts? failed since \S+, the latest: the CA at https:\/\/127\.0\.0\.1:\d+ is unreachable: .* — fix: mend what the latest failure names/, `doctor warns, with why: ${doctor}`);
  gate.open(caPort);
  await waitFor(async () => (await identityOf(sidecar)).renewalFailing === null, 45_000, '/identity: nothing failing once the CA is back', sidecar.process);
  t.not((await identityOf(sidecar)).serial, failing?.serial, 'a new SVID serves');
});

t.test('identity.files, workers: 2: an intermediate ending before the leaf ends the SVID; a worker restarted after it starts on it', async (t) => {
  const pki = await makePki('mesh.local');
  // started alongside the sidecar: its two workers are up well within the intermediate's 8 s
  const own = await pki.issueUnderShortIssuer('spiffe://mesh.local/svc/files-workers', 8_000);
  const dir = t.testdir();
  const files = { cert: join(dir, 'svid.crt'), key: join(dir, 'svid.key'), bundle: join(dir, 'bundle.pem') };
  await writeFile(files.cert, own.chainPem);
  await writeFile(files.key, own.privateKeyPem, { mode: 0o600 });
  await writeFile(files.bundle, own.bundlePem);
  const sidecar = await (await launchSidecar(mesh.ca, { service: 'files-workers', files, inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, extraYaml: 'workers: 2' })).ready();
  t.teardown(() => sidecar.stop('SIGKILL'));
  const end = new Date(own.issuerNotAfterMs).toISOString();
  t.equal((await identityOf(sidecar)).notAfter, end, "/identity: the intermediate's end");
  t.equal((await sidecar.admin('/ready')).status, 200, '/ready 200 meanwhile');
  await waitFor(async () => (await sidecar.admin('/ready')).status === 503, own.issuerNotAfterMs - Date.now() + 5_000, "/ready 503 once the intermediate has ended", sidecar.process);
  t.same(JSON.parse((await sidecar.admin('/ready')).body), { status: 'expired', notAfter: end }, "/ready: expired, at the intermediate's end");
  await restartWorkerOnExpired(t, sidecar, own.serialHex);
});
