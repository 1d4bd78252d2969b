import t from 'tap';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { buildCertificate, keyIdentifier } from '../../src/pki/certificate.js';
import { octetString } from '../../src/pki/der.js';
import { generateWorkloadKey, spkiDerOf } from '../../src/pki/keys.js';
import { issuerName } from '../../src/ca/x509-profile.js';
import { makePki } from '../helpers/pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { isMeshcarError } from '../../src/errors.js';

const ID = 'spiffe://mesh.test/svc/orders';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isMeshcarError(err) && err.code === 'identity_invalid') return err.message;
    throw err;
  }
  return 'accepted';
}

t.test('validateSvid', async (t) => {
  const pki = await makePki('mesh.test');
  const foreign = await makePki('mesh.test'); // same trust domain name, different root keys
  const good = await pki.issue(ID);

  t.test('a good set passes and is parsed', async (t) => {
    const svid = validateSvid(good, ID);
    t.equal(svid.spiffeId, ID);
    t.equal(svid.serialHex, good.serialHex);
    t.ok(svid.notBefore < new Date() && svid.notAfter > new Date());
    t.equal(svid.leaf.serialNumber.toLowerCase(), good.serialHex);
    // the chain keeps leaf + issuer for the handshake
    t.equal((svid.chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  });

  t.test('a bundle of several roots is fine', async (t) => {
    const svid = validateSvid({ ...good, bundlePem: foreign.bundlePem + good.bundlePem }, ID);
    t.equal((svid.bundlePem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  });

  t.test('wrong key', async (t) => {
    const other = await pki.issue(ID);
    t.match(refusal(() => validateSvid({ ...good, privateKeyPem: other.privateKeyPem }, ID)), /private key does not match the certificate (\(serial [0-9a-f]+\)|"[^"]+" \(serial [0-9a-f]+\))$/);
  });

  t.test('foreign CA', async (t) => {
    t.match(refusal(() => validateSvid({ ...good, bundlePem: foreign.bundlePem }, ID)), /not issued by any certificate of the chain or the bundle/);
    const fromForeign = await foreign.issue(ID);
    t.match(refusal(() => validateSvid({ ...fromForeign, bundlePem: pki.bundlePem }, ID)), /not issued by/);
  });

  t.test('chain without its issuer', async (t) => {
    t.match(refusal(() => validateSvid({ ...good, chainPem: good.certificatePem }, ID)), /not issued by/);
  });

  t.test('wrong SPIFFE ID', async (t) => {
    t.match(refusal(() => validateSvid(good, 'spiffe://mesh.test/svc/payments')), /is for spiffe:\/\/mesh\.test\/svc\/orders, expected spiffe:\/\/mesh\.test\/svc\/payments/);
  });

  t.test('two URI SANs, or none', async (t) => {
    const two = await pki.issueWithUris([ID, 'spiffe://mesh.test/svc/admin']);
    t.match(refusal(() => validateSvid(two, ID)), /carries 2 URI SANs/);
    const none = await pki.issueWithUris([]);
    t.match(refusal(() => validateSvid(none, ID)), /carries 0 URI SANs/);
  });

  // below TLS_POLICY's security level 2: OpenSSL would not load it (ERR_SSL_EE_KEY_TOO_SMALL),
  // and no peer would take it; said at load, in words (an operator's identity.files)
  t.test('an RSA key under 2048 bits is refused, named', async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const weak = await pki.issue(ID, { key: { privateKeyPem: privateKey, publicKeyPem: publicKey } });
    t.match(refusal(() => validateSvid(weak, ID)), /^certificate \(serial [0-9a-f]+\) has a 1024-bit RSA key: meshcar's TLS takes RSA keys of 2048 bits or more/);
    const fine = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const rsa2048 = await pki.issue(ID, { key: { privateKeyPem: fine.privateKey, publicKeyPem: fine.publicKey } });
    t.equal(validateSvid(rsa2048, ID).spiffeId, ID, 'RSA-2048 is taken');
  });

  t.test('a signing certificate is no SVID, as peers judge it (X509-SVID §5.2)', async (t) => {
    const ca = await pki.issueWithUris([ID], { ca: true, keyUsage: { digitalSignature: true, keyCertSign: true, cRLSign: true } });
    t.match(refusal(() => validateSvid(ca, ID)), /is a CA certificate/);
    // cA false, but it may sign: every peer refuses it (bad_identity), so it is refused here first
    const signer = await pki.issueWithUris([ID], { keyUsage: { digitalSignature: true, keyCertSign: true } });
    t.match(refusal(() => validateSvid(signer, ID)), /is no X509-SVID leaf: the certificate's keyUsage has keyCertSign/);
    const crl = await pki.issueWithUris([ID], { keyUsage: { digitalSignature: true, cRLSign: true } });
    t.match(refusal(() => validateSvid(crl, ID)), /keyUsage has cRLSign/);
    // cA with keyUsage digitalSignature alone: Node's cert.ca (OpenSSL's X509_check_ca) says false
    const quietCa = await pki.issueWithUris([ID], { ca: true, keyUsage: { digitalSignature: true } });
    t.match(refusal(() => validateSvid(quietCa, ID)), /is a CA certificate/);
    // a leaf that cannot sign its handshake (keyUsage without digitalSignature) is refused by peers
    const agreeOnly = await pki.issueWithUris([ID], { keyUsage: { keyAgreement: true } });
    t.match(refusal(() => validateSvid(agreeOnly, ID)), /lacks digitalSignature/);
    // and one without keyUsage at all (X509-SVID §4.3: every SVID carries it), which peers refuse alike
    const noKeyUsage = await pki.issueWithUris([ID], { keyUsage: null });
    t.match(refusal(() => validateSvid(noKeyUsage, ID)), /is no X509-SVID leaf: the certificate has no keyUsage extension/);
    t.equal(validateSvid(await pki.issueWithUris([ID]), ID).spiffeId, ID, 'a leaf passes');
  });

  t.test('expired', async (t) => {
    // issued 30 s ago for 10 s (the issuer itself is backdated a minute, so it was valid then)
    const expired = await pki.issue(ID, { lifetimeMs: 10_000, now: new Date(Date.now() - 30_000) });
    t.match(refusal(() => validateSvid(expired, ID)), /expired at/);
    // the same set judged at a time inside its life passes: the dates are what failed
    t.equal(validateSvid(expired, ID, new Date(Date.now() - 25_000)).serialHex, expired.serialHex);
  });

  t.test('the SVID ends with the first certificate of its path to end, not with its leaf', async (t) => {
    const leafEnd = (m: { certificatePem: string }) => new Date(new X509Certificate(m.certificatePem).validTo).getTime();
    const ends = (svid: ReturnType<typeof validateSvid>) => ({ notAfter: svid.notAfter.getTime(), leafNotAfter: svid.leafNotAfter.getTime() });
    // what our CA issues: the leaf ends first (it is clamped to its issuer, the issuer to its root)
    const plain = validateSvid(good, ID);
    t.same(ends(plain), { notAfter: leafEnd(good), leafNotAfter: leafEnd(good) }, 'a leaf that ends first: its own end');
    t.match(plain.endsWith, /^the leaf "?.*\(serial [0-9a-f]+\)$/);

    const underShort = await pki.issueUnderShortIssuer(ID, 600_000);
    const shortIssuer = validateSvid(underShort, ID);
    t.same(ends(shortIssuer), { notAfter: underShort.issuerNotAfterMs, leafNotAfter: leafEnd(underShort) }, 'an intermediate that ends before the leaf: its end');
    t.match(shortIssuer.endsWith, /^the chain's "meshcar issuer CA" \(serial [0-9a-f]+\)$/);

    // a root that ends in 20 min above an issuer of a year and a leaf of an hour
    const shortRoot = await makePki('mesh.test', 1_200_000);
    const rooted = await shortRoot.issue(ID);
    const rootEnd = new Date(new X509Certificate(shortRoot.rootPem).validTo).getTime();
    t.same(ends(validateSvid(rooted, ID)), { notAfter: rootEnd, leafNotAfter: leafEnd(rooted) }, 'the bundle root the path ends at ends first: its end');
    t.match(validateSvid(rooted, ID).endsWith, /^the bundle root "meshcar root CA" \(serial [0-9a-f]+\)$/);
    t.same(ends(validateSvid({ ...rooted, bundlePem: pki.bundlePem + rooted.bundlePem }, ID)), { notAfter: rootEnd, leafNotAfter: leafEnd(rooted) }, 'among other roots of the bundle too');
    t.same(ends(validateSvid({ ...good, bundlePem: good.bundlePem + rooted.bundlePem }, ID)), ends(plain), 'a short root the path does not run through is the peers\' business');

    // presented beside the path: the path to our root does without it (a root rotation's cross certificate)
    t.same(ends(validateSvid({ ...good, chainPem: good.chainPem + underShort.issuerPem }, ID)), ends(plain), 'another intermediate presented beside the path does not count');
  });

  t.test('garbage', async (t) => {
    t.match(refusal(() => validateSvid({ ...good, chainPem: 'not a certificate' }, ID)), /holds no PEM CERTIFICATE/);
    t.match(refusal(() => validateSvid({ ...good, privateKeyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, ID)), /private key cannot be read/);
  });
});

t.test('a bundle certificate that is not a root: the path goes on through it to a root of the bundle, or is refused', async (t) => {
  const pki = await makePki('mesh.test');
  const good = await pki.issue(ID);
  // TLS peers (OpenSSL) anchor only on a self-signed root: an intermediate alone in the bundle
  // was taken here, and every handshake then failed
  t.match(refusal(() => validateSvid({ ...good, bundlePem: pki.issuerPem }, ID)), /the bundle certificate .* is not a root \(it is not self-signed, issuer .*\), and the root that issued it is not in the bundle: TLS peers anchor only on a self-signed root; add that root to the bundle/);
  const both = validateSvid({ ...good, bundlePem: pki.issuerPem + pki.rootPem }, ID);
  t.equal(both.spiffeId, ID, 'with its root beside it in the bundle: accepted');
  const leafOnly = validateSvid({ ...good, chainPem: good.certificatePem, bundlePem: pki.issuerPem + pki.rootPem }, ID);
  t.equal(leafOnly.spiffeId, ID, 'a leaf alone whose issuer the bundle holds, with its root: accepted, as OpenSSL builds the path from its store');
});

t.test('two bundle certificates that sign each other, and no root: refused as not a root, not walked round', async (t) => {
  const pki = await makePki('mesh.test');
  const good = await pki.issue(ID);
  const other = await generateWorkloadKey();
  const otherSpki = spkiDerOf(createPublicKey(other.publicKeyPem));
  const otherName = { organization: 'mesh.test', commonName: 'cross' };
  const ca = (subjectSpki: Buffer, issuerSpki: Buffer) => [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, critical: true },
    { name: 'subjectKeyIdentifier', id: '2.5.29.14', value: octetString(keyIdentifier(subjectSpki)) },
    { name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(issuerSpki).toString('binary') },
  ];
  const span = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) };
  // the issuer's name and key, signed by the other key; the other's, signed by the issuer's key
  const x = await buildCertificate({ subject: issuerName('mesh.test'), issuer: otherName, subjectPublicKeySpki: pki.issuer.spki, signingKey: createPrivateKey(other.privateKeyPem), extensions: ca(pki.issuer.spki, otherSpki), ...span });
  const y = await buildCertificate({ subject: otherName, issuer: issuerName('mesh.test'), subjectPublicKeySpki: otherSpki, signingKey: pki.issuer.key, extensions: ca(otherSpki, pki.issuer.spki), ...span });
  t.match(refusal(() => validateSvid({ ...good, bundlePem: x.pem + y.pem }, ID)), /the bundle certificate .* is not a root \(it is not self-signed/);
});
