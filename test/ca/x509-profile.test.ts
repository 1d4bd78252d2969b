// Every SVID rule of the contract, checked by openssl on real certificates from `ca init` and
// `ca issue`: root, issuer and leaf, and the chain verified for both TLS purposes.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { execFileAsync, makeCaDir, openssl } from '../helpers/ca.js';

const DAY = 86_400_000;

function extension(text: string, name: string): string | undefined {
  const match = new RegExp(`X509v3 ${name}:( critical)? *\\n\\s+([^\\n]+)`).exec(text);
  return match ? `${match[1] ? 'critical ' : ''}${match[2]?.trim()}` : undefined;
}

function serialBits(text: string): number {
  const hex = /Serial Number:\s*\n?\s*([0-9a-f:]+)/i.exec(text)?.[1]?.replace(/:/g, '') ?? '';
  return BigInt(`0x${hex}`).toString(2).length;
}

t.test('root, issuer and leaf follow the SVID profile', async (t) => {
  const caDir = await makeCaDir();
  const out = join(caDir, '..', 'orders');
  await execFileAsync(process.execPath, ['dist/cli.js', 'ca', 'issue', '--dir', caDir, '--service', 'orders', '--out', out]);
  const rootPem = await readFile(join(caDir, 'root.crt'), 'utf8');
  const issuerPem = await readFile(join(caDir, 'issuer.crt'), 'utf8');
  const chainPem = await readFile(join(out, 'svid.crt'), 'utf8');
  const root = await openssl(['x509', '-noout', '-text'], rootPem);
  const issuer = await openssl(['x509', '-noout', '-text'], issuerPem);
  const leaf = await openssl(['x509', '-noout', '-text'], chainPem);

  t.test('root', async (t) => {
    t.equal(extension(root, 'Basic Constraints'), 'critical CA:TRUE, pathlen:1');
    t.equal(extension(root, 'Key Usage'), 'critical Certificate Sign, CRL Sign');
    t.ok(extension(root, 'Subject Key Identifier'));
    const cert = new X509Certificate(rootPem);
    t.ok(cert.checkIssued(cert) && cert.verify(cert.publicKey), 'self-signed');
    const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365 * DAY);
    t.ok(years > 9.9 && years < 10.1, `10 years (${years.toFixed(2)})`);
    t.ok(serialBits(root) >= 64, 'serial of at least 64 bits');
  });

  t.test('issuer', async (t) => {
    t.equal(extension(issuer, 'Basic Constraints'), 'critical CA:TRUE, pathlen:0');
    t.equal(extension(issuer, 'Key Usage'), 'critical Certificate Sign, CRL Sign');
    t.equal(extension(issuer, 'Authority Key Identifier'), extension(root, 'Subject Key Identifier'), 'AKI names the root');
    t.ok(extension(issuer, 'Subject Key Identifier'));
    const cert = new X509Certificate(issuerPem);
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY;
    t.ok(days > 364 && days < 366, `one year (${days.toFixed(1)} days)`);
    t.ok(cert.verify(new X509Certificate(rootPem).publicKey), 'signed by the root');
  });

  t.test('leaf (X509-SVID)', async (t) => {
    t.equal(extension(leaf, 'Subject Alternative Name'), 'URI:spiffe://mesh.local/svc/orders', 'exactly one URI SAN, nothing else');
    t.equal(extension(leaf, 'Basic Constraints'), 'critical CA:FALSE');
    t.equal(extension(leaf, 'Key Usage'), 'critical Digital Signature', 'EC leaf: digitalSignature only, never keyCertSign/cRLSign');
    t.equal(extension(leaf, 'Extended Key Usage'), 'TLS Web Server Authentication, TLS Web Client Authentication');
    t.ok(extension(leaf, 'Subject Key Identifier'));
    t.equal(extension(leaf, 'Authority Key Identifier'), extension(issuer, 'Subject Key Identifier'), 'AKI names the issuer');
    t.ok(serialBits(leaf) >= 64, 'serial of at least 64 bits');
    t.notMatch(leaf, /Serial Number: \(Negative\)/, 'positive serial');
    const cert = new X509Certificate(chainPem);
    const now = Date.now();
    t.ok(Date.parse(cert.validFrom) < now - 30_000, 'notBefore backdated for clock skew');
    const hours = (Date.parse(cert.validTo) - now) / 3_600_000;
    t.ok(hours > 23.9 && hours <= 24, `24h default lifetime (${hours.toFixed(2)} h)`);
    t.equal((chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'svid.crt holds leaf + issuer');
  });

  t.test('openssl verifies the chain for client and server use', async (t) => {
    const bundle = join(caDir, 'bundle.pem');
    const svid = join(out, 'svid.crt');
    for (const purpose of ['sslclient', 'sslserver']) {
      const { stdout } = await execFileAsync('openssl', ['verify', '-CAfile', bundle, '-untrusted', svid, '-purpose', purpose, svid]);
      t.match(stdout, /: OK/, purpose);
    }
    await t.rejects(execFileAsync('openssl', ['verify', '-CAfile', bundle, '-purpose', 'sslclient', svid]), 'the leaf alone (no issuer) does not verify');
  });
});
