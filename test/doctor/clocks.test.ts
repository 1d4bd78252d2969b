// doctor names a clock that is off. A CA whose clock runs more than a minute ahead of this host
// (past what an SVID is backdated) issues SVIDs that start in this host's future: `meshcar run`
// refused them at start, "... ahead; set both clocks right", while doctor passed the CA. And an
// SVID whose dates start later than this host's clock was a ✗ with no fix (identity.files), or a
// ✗ for a stored one that run passes over for a new one (identity.ca).

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { caUrlConfig } from '../helpers/ca-url-config.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkCa } from '../../src/doctor/ca.js';
import { checkIdentity } from '../../src/doctor/identity.js';
import { PROBE_TIMEOUT_MS, setProbeTimeout } from '../../src/doctor/probe.js';

const HOUR = 3_600_000;

/** A server with the CA's certificate whose answers carry a Date field `aheadMs` off this host's clock. */
async function caAnswering(t: Tap.Test, pki: TestPki, aheadMs: number, date?: 'silent' | string): Promise<string> {
  const served = await pki.issue('spiffe://mesh.local/meshcar/ca', { lifetimeMs: HOUR, serverNames: ['127.0.0.1'] });
  const server = https.createServer({ cert: served.chainPem, key: served.privateKeyPem }, (_req, res) => {
    if (date === 'silent') return; // the request is read and never answered
    res.setHeader('date', date ?? new Date(Date.now() + aheadMs).toUTCString());
    res.end('{}');
  });
  t.teardown(() => server.closeAllConnections());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return caUrlConfig(t, (server.address() as AddressInfo).port, pki.bundlePem);
}

t.test("the CA's clock 5 minutes ahead: a warning naming it, with NTP as the fix; 5 s off passes", async (t) => {
  const pki = await makePki('mesh.local');
  const ahead = await checkCa(await loadSidecarConfig(await caAnswering(t, pki, 5 * 60_000)));
  t.equal(ahead?.status, 'warn', ahead?.message);
  t.match(ahead?.message, /^reachable, presents .*, but its clock reads (4 min 59|5 min [01]) s ahead of this host's \(its Date field\): the SVIDs it issues start in this host's future/);
  t.match(ahead?.fix, /NTP/);
  const behind = await checkCa(await loadSidecarConfig(await caAnswering(t, pki, -10 * 60_000)));
  t.match(behind?.message, /its clock reads (9 min 59|10 min [01]) s behind this host's/ /* a Date field has whole seconds */);
  const near = await checkCa(await loadSidecarConfig(await caAnswering(t, pki, 5_000)));
  t.equal(near?.status, 'ok', near?.message);
});

t.test('a CA that finishes TLS and never answers HTTP: a warning, not a ✓; a Date field in another form is no clock reading', async (t) => {
  setProbeTimeout(500);
  t.teardown(() => setProbeTimeout(PROBE_TIMEOUT_MS));
  const pki = await makePki('mesh.local');
  const silent = await checkCa(await loadSidecarConfig(await caAnswering(t, pki, 0, 'silent')));
  t.equal(silent?.status, 'warn', silent?.message);
  t.match(silent?.message, /but it did not answer over HTTP: no answer to GET \/v1\/bundle within 500 ms/);
  const garbage = await checkCa(await loadSidecarConfig(await caAnswering(t, pki, 0, 'garbage 5')));
  t.equal(garbage?.status, 'ok', `a Date that is no IMF-fixdate is not read as a clock (${String(garbage?.message)})`);
});

t.test('an SVID that starts later than this host\'s clock: the clocks named, a ✗ for identity.files, a ! for a stored one', async (t) => {
  const pki = await makePki('mesh.local');
  const later = await pki.issue('spiffe://mesh.local/svc/orders', { now: new Date(Date.now() + 2 * HOUR), lifetimeMs: HOUR });
  const dir = t.testdir({ 'svid.crt': later.chainPem, 'svid.key': later.privateKeyPem, 'bundle.pem': pki.bundlePem });
  await chmod(join(dir, 'svid.key'), 0o600);
  const files = join(dir, 'files.yaml');
  await writeFile(files, `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`);
  const fromFiles = (await checkIdentity(await loadSidecarConfig(files))).result;
  t.equal(fromFiles.status, 'fail');
  t.match(fromFiles.message, / is not valid before .*: its issuer's clock runs ahead of this host's, or this host's is behind$/);
  t.match(fromFiles.fix, /NTP/, 'the fix names the clocks');

  const store = join(dir, 'identity');
  await mkdir(store, { mode: 0o700 });
  await writeFile(join(store, 'svid.crt'), later.chainPem);
  await writeFile(join(store, 'svid.key'), later.privateKeyPem, { mode: 0o600 });
  await writeFile(join(store, 'bundle.pem'), pki.bundlePem);
  const stored = join(dir, 'stored.yaml');
  await writeFile(stored, `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:1", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${store}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`);
  const outcome = await checkIdentity(await loadSidecarConfig(stored));
  t.equal(outcome.result.status, 'warn', outcome.result.message);
  t.match(outcome.result.message, /passes a later one over and asks the CA with the join token/);
  t.ok(outcome.needsToken, 'the join token line then decides');
});
