// Keys a CSR can name that nobody holds, over real HTTPS with a real join token: the point at
// infinity on P-256 (the signature is forged from the public key alone, and reading that key's
// details aborted the CA process in a native assertion), an EC key with explicit curve
// parameters (RFC 5480 forbids them), and RSA numbers no key pair has (exponent 1, whose
// "signature" is the padded digest itself; exponent 3, refused by policy; a modulus over 8192 bits). Each is refused, no
// certificate is issued, and the CA keeps serving. An RSA key whose algorithm parameters are
// not NULL (OpenSSL decodes any) is certified as the key, never as the requester's bytes.

import t from 'tap';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { startSigningCa, callCa, openssl, type TestCa } from '../helpers/ca.js';
import { hostileCsr, infinityPointCsr, rsaNumbersCsr, tlv, uriName } from '../helpers/hostile-csr.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

let ca: TestCa;
let bundle: string;
let token: string;

t.before(async () => ({ ca, bundle, token } = await startSigningCa()));
t.teardown(() => ca.close());

async function sign(csr: string) {
  const issuedBefore = ca.logLines.filter((line) => line.event === 'ca.issue').length;
  const res = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` }, ca: bundle });
  const issued = ca.logLines.filter((line) => line.event === 'ca.issue').length - issuedBefore;
  return { res, issued, error: res.status === 200 ? undefined : String(res.json().error), message: res.status === 200 ? '' : String(res.json().message) };
}

async function stillServes(t: Tap.Test) {
  const health = await callCa(ca.server.url, { path: '/healthz', ca: bundle });
  t.equal(health.status, 200, 'the CA still answers');
  const good = await sign(hostileCsr({ sans: [uriName(ORDERS)] }));
  t.equal(good.res.status, 200, `and still issues for a real key: ${good.res.text.slice(0, 200)}`);
}

t.test('the point at infinity with a forged ECDSA signature: bad_csr, nothing issued, the CA keeps serving', async (t) => {
  const { res, issued, error, message } = await sign(infinityPointCsr(ORDERS));
  t.equal(res.status, 400, res.text.slice(0, 300));
  t.equal(error, 'bad_csr');
  t.match(message, /not a point on its curve/);
  t.equal(issued, 0, 'no certificate issued');
  await stillServes(t);
});

t.test('an EC key with explicit curve parameters is bad_csr (RFC 5480: the curve is named)', async (t) => {
  const dir = t.testdir();
  const key = join(dir, 'explicit.key');
  await openssl(['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', key]);
  const csr = await openssl(['req', '-new', '-key', key, '-subj', '/CN=orders', '-addext', `subjectAltName=URI:${ORDERS}`]);
  t.match(await openssl(['req', '-noout', '-text'], csr), /Field Type: prime-field/, 'openssl wrote the curve out in full');
  const { res, issued, error, message } = await sign(csr);
  t.equal(res.status, 400, res.text.slice(0, 300));
  t.equal(error, 'bad_csr');
  t.match(message, /must name its curve/);
  t.equal(issued, 0);
});

t.test('RSA numbers no key pair has: weak_key, nothing issued', async (t) => {
  // exponent 1: the "signature" is the padded digest, made from the public numbers alone
  const modulus = BigInt(`0x${Buffer.from(String(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n), 'base64url').toString('hex')}`);
  const one = await sign(rsaNumbersCsr(ORDERS, modulus, 1n, (padded) => padded));
  t.equal(one.res.status, 400, one.res.text.slice(0, 300));
  t.equal(one.error, 'weak_key');
  t.match(one.message, /public exponent must be odd and from 65537 to 2\^256-1, this one is 1$/);
  t.equal(one.issued, 0);

  // exponent 3: a real key pair, refused by policy (Baseline Requirements 6.1.6)
  const three = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys: generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }) }));
  t.equal(three.error, 'weak_key', three.res.text.slice(0, 300));
  t.match(three.message, /this one is 3$/);

  // 8,704 bits (no key pair: an odd number of that size, exponent 65537): whoever holds an SVID
  // chooses the key each renewal proof is checked with, 4 ms a check at 16,384 bits (a review)
  const big = (1n << 8703n) | 1n;
  const oversized = await sign(rsaNumbersCsr(ORDERS, big, 65537n, (padded) => padded));
  t.equal(oversized.error, 'weak_key', oversized.res.text.slice(0, 300));
  t.match(oversized.message, /RSA keys must have at most 8192 bits, this one has 8704/);
  t.equal(oversized.issued, 0);

  await stillServes(t);
});

t.test("an RSA key with 40 KB of the requester's bytes as its parameters: the certificate carries the key, not the bytes", async (t) => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const blob = Buffer.alloc(40_000, 0x41);
  const { res, issued } = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys, rsaKeyParameters: tlv(0x04, blob) }));
  t.equal(res.status, 200, res.text.slice(0, 300));
  t.equal(issued, 1);
  const leaf = new X509Certificate(String(res.json().certificate));
  t.ok(leaf.raw.length < 2000, `a leaf of ${leaf.raw.length} bytes`);
  t.notOk(leaf.raw.includes(blob.subarray(0, 64)), 'none of the bytes sent is signed');
  t.same(leaf.publicKey.export({ type: 'spki', format: 'der' }), keys.publicKey.export({ type: 'spki', format: 'der' }), 'the key certified is the requester\'s, NULL parameters');
  t.ok(leaf.raw.includes(keys.publicKey.export({ type: 'spki', format: 'der' })), 'encoded as RFC 3279 has it');
});
