// Lifetimes the CA hands out over its real HTTPS API: no certificate it signs outlives the
// issuer that signed it (a leaf asked for 24 h from an issuer with 2 h left ends with the
// issuer, by token and by mTLS renewal, and so does the CA server's own certificate); and the
// CA server renews its own short-lived certificate before it expires, so clients that verify
// it keep connecting after the first one has lapsed.

import t from 'tap';
import tls from 'node:tls';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { makeCaDir, startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { ISSUER_LIFETIME_MS, issueIssuerCertificate, rootName } from '../../src/ca/x509-profile.js';
import { CaClient } from '../../src/identity/ca-client.js';

const silent = pino({ level: 'silent' });
const ORDERS = 'spiffe://mesh.local/svc/orders';
const CA_ID = 'spiffe://mesh.local/meshcar/ca';

/** The certificate the CA server presents on a fresh (never resumed) TLS connection, verified against the bundle. */
function serverCertificate(port: number, bundlePem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: bundlePem, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no server certificate'));
    });
    socket.on('error', reject);
  });
}

/** Replaces the CA's issuer certificate by one for the same key that expires `remainingMs` from now. */
async function shortenIssuer(caDir: string, remainingMs: number): Promise<X509Certificate> {
  const [rootKeyPem, rootPem, issuerKeyPem] = await Promise.all(['root.key', 'root.crt', 'issuer.key'].map((f) => readFile(join(caDir, f), 'utf8')));
  const rootKey = createPrivateKey(rootKeyPem as string);
  const spki = (key: Parameters<typeof createPublicKey>[0]) => createPublicKey(key).export({ type: 'spki', format: 'der' });
  const root = { key: rootKey, name: rootName('mesh.local'), spki: spki(rootKey) };
  const rootNotAfter = new Date(new X509Certificate(rootPem as string).validTo);
  // issued as if a year ago, less the time it has left
  const issuedAt = new Date(Date.now() - ISSUER_LIFETIME_MS + remainingMs);
  const issuer = await issueIssuerCertificate(root, rootNotAfter, spki(createPrivateKey(issuerKeyPem as string)), 'mesh.local', issuedAt);
  await writeFile(join(caDir, 'issuer.crt'), issuer.pem);
  return new X509Certificate(issuer.pem);
}

t.test('no certificate outlives its issuer: leaves by token and by renewal, and the CA server certificate', async (t) => {
  const caDir = await makeCaDir();
  const issuer = await shortenIssuer(caDir, 2 * 3_600_000);
  const issuerNotAfter = new Date(issuer.validTo).getTime();
  const ca = await startTestCa({ maxTtlMs: 24 * 3_600_000, defaultTtlMs: 24 * 3_600_000 }, caDir);
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(caDir, 'bundle.pem'), 'utf8');

  const server = await serverCertificate(ca.server.port, bundlePem);
  t.equal(new Date(server.validTo).getTime(), issuerNotAfter, "the CA server's own certificate ends with the issuer (it asks for 24 h)");

  const client = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger: silent });
  const token = await caToken(caDir, 'orders', 600_000, false);
  const first = await client.sign({ spiffeId: ORDERS, auth: { token }, ttlMs: 24 * 3_600_000 });
  t.equal(first.notAfter.getTime(), issuerNotAfter, 'a leaf asked for 24 h ends when the issuer does (2 h)');
  t.ok(first.leaf.verify(issuer.publicKey), 'signed by that issuer');
  t.ok(first.notAfter.getTime() - Date.now() < 2 * 3_600_000 + 1000, 'about 2 h of life, not 24');

  const renewed = await client.sign({ spiffeId: ORDERS, auth: { svid: first }, ttlMs: 24 * 3_600_000 });
  t.not(renewed.serialHex, first.serialHex);
  t.equal(renewed.notAfter.getTime(), issuerNotAfter, 'renewal over mTLS is clamped the same way');
});

t.test('the CA server renews its own certificate before it expires', async (t) => {
  // a server certificate of 3 s: it is renewed at half its remaining life
  const ca = await startTestCa({}, undefined, { serverCertificateTtlMs: 3000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const first = await serverCertificate(ca.server.port, bundlePem);
  const firstNotAfter = new Date(first.validTo).getTime();
  t.ok(firstNotAfter - Date.now() <= 3000, 'a short-lived server certificate');

  let next = first;
  const deadline = firstNotAfter + 2000;
  while (next.serialNumber === first.serialNumber && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    next = await serverCertificate(ca.server.port, bundlePem);
  }
  t.not(next.serialNumber, first.serialNumber, 'a new server certificate is presented');
  t.ok(new Date(next.validTo).getTime() > firstNotAfter, 'valid for longer than the first');
  t.match(next.subjectAltName ?? '', `URI:${CA_ID}`, 'with the CA SPIFFE ID');
  t.match(next.subjectAltName ?? '', 'DNS:localhost');
  t.match(next.subjectAltName ?? '', 'IP Address:127.0.0.1');

  // once the first certificate has lapsed, verifying clients still get in (tls verifies expiry)
  while (Date.now() <= firstNotAfter + 1000) await new Promise((resolve) => setTimeout(resolve, firstNotAfter + 1001 - Date.now()));
  const later = await serverCertificate(ca.server.port, bundlePem);
  t.ok(new Date(later.validTo).getTime() > Date.now(), 'the certificate presented after the first expired is current');
  const client = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger: silent });
  const svid = await client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) } });
  t.equal(svid.spiffeId, ORDERS, 'and the CA still issues to clients that verify it');
});

t.test("maxTtl bounds the leaves granted, not the CA server's own certificate", async (t) => {
  // with maxTtl 1s bounding it too, the server's certificate lapsed before a sidecar could
  // connect, and every sidecar read "certificate has expired" from then on
  const ca = await startTestCa({ maxTtlMs: 1000, defaultTtlMs: 1000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const server = await serverCertificate(ca.server.port, bundlePem);
  t.ok(new Date(server.validTo).getTime() - Date.now() > 23 * 3_600_000, "the server's certificate lives its 24 h");
  const client = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger: silent });
  const svid = await client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) }, ttlMs: 3_600_000 });
  t.ok(svid.notAfter.getTime() - Date.now() <= 1000, 'a leaf asked for 1 h is granted maxTtl, 1s');
});
