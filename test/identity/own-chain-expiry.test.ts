// A sidecar on identity.files whose intermediate (the issuer it presents) ends before its leaf:
// from the intermediate's end every peer refuses it (CERT_HAS_EXPIRED), so the sidecar says so
// too. Real certificates (a 1 h leaf under a 5 s intermediate of the test root), a real sidecar,
// a real TLS caller that verifies its chain: the load logs one warning naming the intermediate,
// /identity and the expiry metric show its end, and /ready turns 503 expired when it comes.
// A set with such a chain written over the files of a running sidecar is warned of the same way.

import t from 'tap';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type IssuedLeaf, type TestPki } from '../helpers/pki.js';
import { startFilesSidecar } from '../helpers/files-sidecar.js';
import { httpGet, metricValue, waitFor } from '../helpers/mesh.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

/** A caller verifying the sidecar's chain against the bundle: 'authorized', or OpenSSL's code for why not. */
function callerVerdict(port: number, pki: TestPki, caller: IssuedLeaf): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.bundlePem, cert: caller.chainPem, key: caller.privateKeyPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    socket.setTimeout(5_000, () => socket.destroy(new Error('timed out')));
    socket.on('secureConnect', () => {
      resolve('authorized');
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

t.test('an intermediate that ends before the leaf: warned at load, shown, and /ready 503 expired at its end', async (t) => {
  const pki = await makePki(TD);
  const own = await pki.issueUnderShortIssuer(ORDERS, 5_000);
  const caller = await pki.issue(`spiffe://${TD}/svc/frontend`);
  const fx = await startFilesSidecar(pki, t.testdir(), '127.0.0.1', own);
  t.teardown(() => fx.close());
  const issuerEnd = new Date(own.issuerNotAfterMs).toISOString();
  const leafEnd = new Date(new X509Certificate(own.certificatePem).validTo).toISOString();
  const admin = (path: string) => httpGet(fx.adminPort, path);

  const warnings = fx.lines.filter((l) => (l.level as number) >= 40);
  t.equal(warnings.length, 1, `one warning at load (${JSON.stringify(warnings.map((l) => l.msg))})`);
  t.match(String(warnings[0]?.msg), new RegExp(`: the chain's "meshcar issuer CA" \\(serial [0-9a-f]+\\) expires at ${issuerEnd}, before the leaf \\(${leafEnd}\\): from then on every peer refuses this sidecar and /ready answers 503 expired`), 'it names the intermediate, its end and the leaf\'s');

  const identity = JSON.parse((await admin('/identity')).body) as { notAfter: string; leafNotAfter: string };
  t.same({ notAfter: identity.notAfter, leafNotAfter: identity.leafNotAfter }, { notAfter: issuerEnd, leafNotAfter: leafEnd }, '/identity: notAfter is the intermediate\'s end, leafNotAfter the leaf\'s');
  const metrics = (await admin('/metrics')).body;
  t.equal(metricValue(metrics, `meshcar_identity_cert_expiry_timestamp_seconds{spiffe_id="${ORDERS}"}`), own.issuerNotAfterMs / 1000, 'the expiry metric: the intermediate\'s end');

  const before = await admin('/ready');
  const verdictBefore = await callerVerdict(fx.inboundPort, pki, caller);
  t.ok(Date.now() < own.issuerNotAfterMs, 'checked before the intermediate ends');
  t.same({ status: before.status, body: JSON.parse(before.body) }, { status: 200, body: { status: 'ready' } }, '/ready 200 while the intermediate is valid');
  t.equal(verdictBefore, 'authorized', 'a caller accepts the sidecar meanwhile');

  await waitFor(async () => (await admin('/ready')).status === 503, own.issuerNotAfterMs - Date.now() + 5_000, '/ready 503 once the intermediate has ended');
  t.ok(Date.now() >= own.issuerNotAfterMs, `not before the intermediate's end (${issuerEnd})`);
  const after = await admin('/ready');
  t.same({ status: after.status, body: JSON.parse(after.body) }, { status: 503, body: { status: 'expired', notAfter: issuerEnd } }, '/ready: 503 expired, at the intermediate\'s end');
  t.equal(await callerVerdict(fx.inboundPort, pki, caller), 'CERT_HAS_EXPIRED', 'as a caller sees it: it refuses the sidecar\'s chain');
  t.equal(fx.lines.filter((l) => (l.level as number) >= 40).length, 1, 'still the one warning');
});

t.test('files rewritten with a chain that ends before its leaf: warned once when they are taken', async (t) => {
  const pki = await makePki(TD);
  // one key throughout: the rewrite changes the certificate file alone, in one rename
  const key = await generateWorkloadKey();
  const dir = t.testdir();
  const fx = await startFilesSidecar(pki, dir, '127.0.0.1', await pki.issue(ORDERS, { key }));
  t.teardown(() => fx.close());
  t.equal(fx.lines.filter((l) => (l.level as number) >= 40).length, 0, 'no warning for a chain that outlives its leaf');
  const next = await pki.issueUnderShortIssuer(ORDERS, 600_000, { key });
  await writeFile(join(dir, 'svid.crt.new'), next.chainPem);
  await rename(join(dir, 'svid.crt.new'), join(dir, 'svid.crt'));
  const identity = async () => JSON.parse((await httpGet(fx.adminPort, '/identity')).body) as { serial: string; notAfter: string };
  await waitFor(async () => (await identity()).serial === next.serialHex, 10_000, 'the new files taken');
  const issuerEnd = new Date(next.issuerNotAfterMs).toISOString();
  t.equal((await identity()).notAfter, issuerEnd, '/identity: the intermediate\'s end');
  const warnings = fx.lines.filter((l) => (l.level as number) >= 40);
  t.equal(warnings.length, 1, `one warning (${JSON.stringify(warnings.map((l) => l.msg))})`);
  t.match(String(warnings[0]?.msg), `the chain's "meshcar issuer CA" (serial ${new X509Certificate(next.issuerPem).serialNumber.toLowerCase()}) expires at ${issuerEnd}, before the leaf`);
  t.same({ serial: warnings[0]?.serial, notAfter: warnings[0]?.notAfter }, { serial: next.serialHex, notAfter: issuerEnd }, 'with the serial and the end as fields');
});
