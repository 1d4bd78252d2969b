// What the CA says when it refuses a CSR, over real HTTPS with a real join token: the answer
// and the audit line stay small whatever the requester packed into the CSR (counts, not lists;
// requester-chosen values cut to 256 characters), a CSR with more SAN entries than an SVID could
// need is bad_csr, and a constructed URI name is bad_csr with a message that says so. A CSR
// whose signature algorithm is for another key type is bad_csr (an RSA signature labelled
// ecdsa-with-SHA256 verified). A key of a type the CA does not issue for (Ed25519, Ed448, RSA-PSS,
// DSA; CSRs written by openssl) is weak_key naming the accepted keys, not bad_csr about its
// signature algorithm.

import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { startSigningCa, callCa, openssl, type TestCa } from '../helpers/ca.js';
import { dnsName, ecKeys, hostileCsr, tlv, uriName } from '../helpers/hostile-csr.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

let ca: TestCa;
let bundle: string;
let token: string;

t.before(async () => ({ ca, bundle, token } = await startSigningCa()));
t.teardown(() => ca.close());

async function sign(csr: string) {
  const before = ca.logLines.length;
  const res = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` }, ca: bundle });
  const audit = ca.logLines.slice(before).find((line) => line.event === 'ca.deny');
  return { res, audit, auditBytes: JSON.stringify(audit ?? {}).length, message: String(res.json().message) };
}

t.test('thousands of empty DNS names: bad_csr, a short answer and audit line', async (t) => {
  const { res, auditBytes, message } = await sign(hostileCsr({ sans: [uriName(ORDERS), ...Array.from({ length: 9000 }, () => dnsName(''))] }));
  t.equal(res.status, 400, res.text.slice(0, 200));
  t.equal(res.json().error, 'bad_csr');
  t.match(message, /asks for 9001 subject alternative names; at most 16/);
  t.ok(res.text.length < 1_000, `the answer is ${res.text.length} bytes`);
  t.ok(auditBytes < 2_000, `the audit line is ${auditBytes} bytes`);
});

t.test('a few names besides the SPIFFE ID are counted by kind, not listed', async (t) => {
  const { res, message } = await sign(hostileCsr({ sans: [uriName(ORDERS), dnsName('a.example'), dnsName('b.example'), tlv(0x87, Buffer.from([127, 0, 0, 1]))] }));
  t.equal(res.status, 403);
  t.equal(res.json().error, 'identity_not_allowed');
  t.match(message, /besides the SPIFFE ID \(2 DNS, 1 IP\)/);
  t.notMatch(message, /a\.example/, 'the names themselves are not repeated');
});

t.test('a 40,000-character URI is quoted cut to 256 characters', async (t) => {
  const long = `spiffe://mesh.local/svc/${'a'.repeat(40_000)}`;
  const { res, auditBytes, message } = await sign(hostileCsr({ sans: [uriName(long)] }));
  t.equal(res.status, 403);
  t.equal(res.json().error, 'identity_not_allowed');
  t.match(message, /asks for "spiffe:\/\/mesh\.local\/svc\/a+… \(40024 characters\)" but the join token grants spiffe:\/\/mesh\.local\/svc\/orders/);
  t.ok(res.text.length < 1_000, `the answer is ${res.text.length} bytes`);
  t.ok(auditBytes < 2_000, `the audit line is ${auditBytes} bytes`);
});

t.test('a constructed URI name is bad_csr, said in words', async (t) => {
  // [6] constructed, holding an IA5String: forge reads it as a list of nodes
  const constructed = tlv(0xa6, tlv(0x16, Buffer.from(ORDERS)));
  const { res, message } = await sign(hostileCsr({ sans: [constructed] }));
  t.equal(res.status, 400);
  t.equal(res.json().error, 'bad_csr');
  t.notMatch(message, /object Object/);
  t.match(message, /URI name .* not a primitive IA5String/);
});

t.test('a signature algorithm that does not match the key is bad_csr', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // an RSA signature over SHA-256 verifies whatever the label says: the label is checked
  const rsaAsEcdsa = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys: rsa, signatureOid: '1.2.840.10045.4.3.2' }));
  t.equal(rsaAsEcdsa.res.status, 400, rsaAsEcdsa.res.text.slice(0, 200));
  t.equal(rsaAsEcdsa.res.json().error, 'bad_csr');
  t.match(rsaAsEcdsa.message, /signature algorithm 1\.2\.840\.10045\.4\.3\.2 is for ECDSA keys, but the certificate request's key is rsa/);
  const ecAsRsa = await sign(hostileCsr({ sans: [uriName(ORDERS)], signatureOid: '1.2.840.113549.1.1.11' }));
  t.equal(ecAsRsa.res.status, 400, ecAsRsa.res.text.slice(0, 200));
  t.match(ecAsRsa.message, /is for RSA keys, but the certificate request's key is ec/);
  const rsaAsRsa = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys: rsa }));
  t.equal(rsaAsRsa.res.status, 200, 'the same key under its own label is issued');
});

t.test('keys: ECDSA on P-256, P-384 or P-521, RSA from 2048 bits; the refusal says so', async (t) => {
  const k1 = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys: ecKeys('secp256k1') }));
  t.equal(k1.res.status, 400);
  t.equal(k1.res.json().error, 'weak_key');
  t.match(k1.message, /EC curve secp256k1 is not supported \(use P-256, P-384 or P-521\)/, 'the message names every accepted curve');
  for (const curve of ['P-256', 'P-384', 'P-521']) {
    const { res } = await sign(hostileCsr({ sans: [uriName(ORDERS)], keys: ecKeys(curve) }));
    t.equal(res.status, 200, `${curve} is issued`);
  }
});

t.test('Ed25519, Ed448, RSA-PSS and DSA keys: weak_key naming the keys taken, not their signature algorithm', async (t) => {
  const dir = t.testdir();
  const kinds: Array<[string, string[]]> = [
    ['ed25519', ['genpkey', '-algorithm', 'ed25519']],
    ['ed448', ['genpkey', '-algorithm', 'ed448']],
    ['rsa-pss', ['genpkey', '-algorithm', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['dsa', ['genpkey', '-paramfile', join(dir, 'dsa.params')]],
  ];
  await openssl(['genpkey', '-genparam', '-algorithm', 'dsa', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', join(dir, 'dsa.params')]);
  for (const [kind, generate] of kinds) {
    const key = join(dir, `${kind}.key`);
    await openssl([...generate, '-out', key]);
    const csr = await openssl(['req', '-new', '-key', key, '-subj', '/CN=orders', '-addext', `subjectAltName=URI:${ORDERS}`]);
    const { res, message } = await sign(csr);
    t.equal(res.status, 400, `${kind}: ${res.text.slice(0, 200)}`);
    t.equal(res.json().error, 'weak_key', `${kind}: weak_key`);
    t.match(message, new RegExp(`key type ${kind} is not supported \\(use ECDSA on P-256, P-384 or P-521, or RSA with 2048 bits or more\\)`), `${kind}: the message names what is accepted`);
  }
});

t.test("a malformed CSR is bad_csr in the CA's own words, not its decoder's", async (t) => {
  // an empty AlgorithmIdentifier reached a TypeError ("Cannot read properties of undefined"),
  // a length of 6 bytes forge's "Only 8, 16, 24, or 32 bits supported: 48"
  const emptyAlgorithm = await sign(hostileCsr({ sans: [uriName(ORDERS)], algorithmDer: tlv(0x30, Buffer.alloc(0)) }));
  t.equal(emptyAlgorithm.res.status, 400);
  t.equal(emptyAlgorithm.res.json().error, 'bad_csr');
  t.equal(emptyAlgorithm.message, 'the certificate request is malformed: it is not a PKCS #10 request (RFC 2986)');
  t.match(emptyAlgorithm.audit, { reason: 'bad_csr', cause: /TypeError|Cannot read/ }, "the CA's own audit line keeps what went wrong, for the operator");
  const wideLength = await sign(`-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from([0x30, 0x86, 1, 1, 1, 1, 1, 1, 0]).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);
  t.equal(wideLength.res.json().error, 'bad_csr');
  t.equal(wideLength.message, 'the certificate request is not valid DER');
});

t.test('the well-formed CSR is still issued', async (t) => {
  const { res } = await sign(hostileCsr({ sans: [uriName(ORDERS)] }));
  t.equal(res.status, 200, res.text.slice(0, 300));
});
