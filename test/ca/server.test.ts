// The CA's HTTP API over real HTTPS: first issuance by join token, renewal with the current
// SVID proven on its connection, and every kind of bad input, each answered with its status
// and JSON error while the server keeps serving.

import t from 'tap';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestCa, callCa, execFileAsync, makeCaDir, openssl, type TestCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateRsaKey, generateWorkloadKey } from '../../src/pki/keys.js';
import { createJoinToken } from '../../src/ca/join-tokens.js';
import { TokenKeys } from '../../src/ca/token-keys.js';
import { loadCaMaterial } from '../../src/ca/store.js';
import { caToken } from '../../src/ca/commands.js';
import { issueLeafCertificate } from '../../src/ca/x509-profile.js';
import { uriSans } from '../../src/pki/x509-read.js';
import { buildCertificate } from '../../src/pki/certificate.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const splitPem = (pem: string): string[] => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

async function csrFor(spiffeId: string, keys?: { privateKeyPem: string; publicKeyPem: string }) {
  const pair = keys ?? (await generateWorkloadKey());
  const csr = await buildCsr(createPrivateKey(pair.privateKeyPem), createPublicKey(pair.publicKeyPem), spiffeId);
  return { csr, keyPem: pair.privateKeyPem };
}

let ca: TestCa;
let bundle: string;

t.before(async () => {
  ca = await startTestCa({ maxTtlMs: 86_400_000 });
  bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
});
t.teardown(() => ca.close());

// what `meshcar ca token` runs (test/cli.test.ts and test/e2e/ca-serve.test.ts drive the
// command itself), called here without a process per token
const token = (service = 'orders', ttlMs = 3_600_000, single = false) => caToken(ca.dir, service, ttlMs, single);

async function sign(body: unknown, headers: Record<string, string> = {}, client?: { cert: string; key: string }) {
  return callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: typeof body === 'string' ? body : JSON.stringify(body), headers, ca: bundle, ...(client ?? {}) });
}

function expectError(t: Tap.Test, res: Awaited<ReturnType<typeof sign>>, status: number, code: string) {
  t.equal(res.status, status, `status ${status} for ${code}: ${res.text}`);
  t.match(res.headers['content-type'], /application\/json/);
  const body = res.json();
  t.equal(body.error, code);
  t.type(body.message, 'string');
}

async function issueWithToken(spiffeService = 'orders') {
  const { csr, keyPem } = await csrFor(`spiffe://mesh.local/svc/${spiffeService}`);
  const res = await sign({ csr }, { authorization: `Bearer ${await token(spiffeService)}` });
  return { res, keyPem };
}

t.test('first issuance with a join token', async (t) => {
  const { res } = await issueWithToken();
  t.equal(res.status, 200, res.text);
  const body = res.json();
  t.equal(body.spiffeId, ORDERS);
  const leaf = new X509Certificate(String(body.certificate));
  t.same(uriSans(leaf), [ORDERS]);
  t.match(String(body.chain), /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/, 'chain holds leaf + issuer');
  t.equal(body.bundle, bundle);
  t.equal(new Date(String(body.notAfter)).toISOString(), new Date(leaf.validTo).toISOString());
  t.ok(ca.logLines.some((l) => l.event === 'ca.issue' && l.spiffeId === ORDERS && typeof l.serial === 'string' && l.auth === 'token'), 'audit line for the issuance');
  t.notOk(JSON.stringify(ca.logLines).includes('eyJ'), 'no token in any log line');
  t.notOk(JSON.stringify(ca.logLines).includes('PRIVATE KEY'), 'no key in any log line');
});

t.test('lifetime is capped by maxTtl and ttl is honoured below it', async (t) => {
  const { csr } = await csrFor(ORDERS);
  const long = await sign({ csr, ttl: '48h' }, { authorization: `Bearer ${await token()}` });
  t.equal(long.status, 200);
  const lifetime = new Date(String(long.json().notAfter)).getTime() - Date.now();
  t.ok(lifetime <= 86_400_000 && lifetime > 86_000_000, `capped at 24h (${lifetime} ms)`);
  const short = await sign({ csr, ttl: '10m' }, { authorization: `Bearer ${await token()}` });
  const shortLife = new Date(String(short.json().notAfter)).getTime() - Date.now();
  t.ok(shortLife <= 600_000 && shortLife > 590_000, `10m honoured (${shortLife} ms)`);
  expectError(t, await sign({ csr, ttl: 'forever' }, { authorization: `Bearer ${await token()}` }), 400, 'bad_request');
});

t.test('credentials: missing, malformed, expired, foreign, another service', async (t) => {
  const { csr } = await csrFor(ORDERS);
  expectError(t, await sign({ csr }), 401, 'unauthenticated');
  expectError(t, await sign({ csr }, { authorization: 'Basic abc' }), 401, 'unauthenticated');
  expectError(t, await sign({ csr }, { authorization: 'Bearer not.a.token' }), 401, 'bad_token');
  const expired = createJoinToken((await TokenKeys.load(ca.dir)).signer, ORDERS, 1000, false, Date.now() - 10_000);
  expectError(t, await sign({ csr }, { authorization: `Bearer ${expired}` }), 401, 'token_expired');
  const foreignDir = await makeCaDir();
  const foreign = createJoinToken((await TokenKeys.load(foreignDir)).signer, ORDERS, 60_000, false);
  expectError(t, await sign({ csr }, { authorization: `Bearer ${foreign}` }), 401, 'bad_token');
  expectError(t, await sign({ csr }, { authorization: `Bearer ${await token('payments')}` }), 403, 'identity_not_allowed');
});

t.test('a single-use token is refused the second time, also after a restart', async (t) => {
  const once = await token('orders', 3_600_000, true);
  const first = await csrFor(ORDERS);
  t.equal((await sign({ csr: first.csr }, { authorization: `Bearer ${once}` })).status, 200);
  expectError(t, await sign({ csr: first.csr }, { authorization: `Bearer ${once}` }), 401, 'token_used');
  await ca.restart();
  expectError(t, await sign({ csr: first.csr }, { authorization: `Bearer ${once}` }), 401, 'token_used');
  const reusable = await token();
  t.equal((await sign({ csr: first.csr }, { authorization: `Bearer ${reusable}` })).status, 200);
  t.equal((await sign({ csr: first.csr }, { authorization: `Bearer ${reusable}` })).status, 200, 'a reusable token works until it expires');
});

t.test('bad bodies and bad CSRs', async (t) => {
  const auth = { authorization: `Bearer ${await token()}` };
  expectError(t, await sign('{not json', auth), 400, 'malformed_json');
  expectError(t, await sign({ nope: 1 }, auth), 400, 'bad_request');
  const { res } = await issueWithToken();
  expectError(t, await sign({ csr: String(res.json().certificate) }, auth), 400, 'bad_csr');
  expectError(t, await sign({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }, auth), 400, 'bad_csr');

  const { csr } = await csrFor(ORDERS);
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  der[der.length - 5] = (der[der.length - 5] as number) ^ 0xff; // inside the signature
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  expectError(t, await sign({ csr: tampered }, auth), 400, 'bad_csr');

  const rsa1024 = await generateRsaKey(1024);
  expectError(t, await sign({ csr: (await csrFor(ORDERS, rsa1024)).csr }, auth), 400, 'weak_key');
  const rsa2048 = await generateRsaKey(2048);
  const rsaRes = await sign({ csr: (await csrFor(ORDERS, rsa2048)).csr }, auth);
  t.equal(rsaRes.status, 200, 'RSA 2048 is accepted');
  const rsaUsage = await openssl(['x509', '-noout', '-ext', 'keyUsage'], String(rsaRes.json().certificate));
  t.match(rsaUsage, /Digital Signature, Key Encipherment/, 'RSA leaves also get keyEncipherment');
  expectError(t, await sign({ csr: (await csrFor('spiffe://other.domain/svc/orders')).csr }, auth), 403, 'identity_not_allowed');
});

t.test('CSRs made by openssl: two URIs, a DNS name, or just right', async (t) => {
  const dir = t.testdir();
  const auth = { authorization: `Bearer ${await token()}` };
  const keyFile = join(dir, 'k.pem');
  await execFileAsync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  const make = (san: string) => openssl(['req', '-new', '-key', keyFile, '-subj', '/O=test', '-addext', `subjectAltName=${san}`]);
  expectError(t, await sign({ csr: await make(`URI:${ORDERS},URI:spiffe://mesh.local/svc/admin`) }, auth), 403, 'identity_not_allowed');
  expectError(t, await sign({ csr: await make(`URI:${ORDERS},DNS:orders.example`) }, auth), 403, 'identity_not_allowed');
  const good = await sign({ csr: await make(`URI:${ORDERS}`) }, auth);
  t.equal(good.status, 200, 'a plain openssl CSR for the granted ID is signed');
});

t.test('renewal with the current SVID proven on its connection', async (t) => {
  const { res, keyPem } = await issueWithToken();
  const chain = String(res.json().chain);
  const { csr } = await csrFor(ORDERS);
  const renewed = await sign({ csr }, {}, { cert: chain, key: keyPem });
  t.equal(renewed.status, 200, renewed.text);
  t.equal(renewed.json().spiffeId, ORDERS, 'same identity');
  t.ok(ca.logLines.some((l) => l.event === 'ca.issue' && l.auth === 'svid'), 'audited as a renewal by SVID');
  const other = await csrFor('spiffe://mesh.local/svc/payments');
  expectError(t, await sign({ csr: other.csr }, {}, { cert: chain, key: keyPem }), 403, 'identity_not_allowed');
  // the leaf alone (the certificate, not the chain): said so, not "another CA's"
  const alone = await sign({ csr }, {}, { cert: String(res.json().certificate), key: keyPem });
  expectError(t, alone, 401, 'bad_svid');
  t.match(alone.json().message, /^the SVID came alone, without the issuer that signed it: send the chain the CA handed out/, 'the leaf alone: told to present the chain');
});

// OpenSSL verified a client chain in any order and passed over certificates that do not
// belong to it; the CA's own walk of an SVID proof does too (a TLS review found an in-order
// walk refusing such chains as "not issued by this CA")
t.test('renewal with the chain sent out of order or with extra certificates', async (t) => {
  const { res, keyPem } = await issueWithToken();
  const [leaf, issuer] = splitPem(String(res.json().chain));
  const stranger = await startTestCa();
  t.teardown(() => stranger.close());
  const strangerRoot = await readFile(join(stranger.dir, 'bundle.pem'), 'utf8');
  const { csr } = await csrFor(ORDERS);
  for (const [name, chain] of [
    ['the leaf twice', leaf + leaf + issuer],
    ['a foreign root between leaf and issuer', leaf + strangerRoot + issuer],
    ['our root and a foreign one before the issuer', leaf + bundle + strangerRoot + issuer],
  ] as const) {
    const renewed = await sign({ csr }, {}, { cert: chain, key: keyPem });
    t.equal(renewed.status, 200, `${name}: ${renewed.text.slice(0, 200)}`);
  }
});

t.test('renewal refused with a foreign or an expired certificate', async (t) => {
  const foreign = await startTestCa();
  t.teardown(() => foreign.close());
  const foreignBundle = await readFile(join(foreign.dir, 'bundle.pem'), 'utf8');
  const { csr, keyPem } = await csrFor(ORDERS);
  const foreignRes = await callCa(foreign.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${createJoinToken((await TokenKeys.load(foreign.dir)).signer, ORDERS, 60_000, false)}` }, ca: foreignBundle });
  t.equal(foreignRes.status, 200);
  const foreignChain = await sign({ csr }, {}, { cert: String(foreignRes.json().chain), key: keyPem });
  expectError(t, foreignChain, 401, 'bad_svid');
  t.match(foreignChain.json().message, /is not issued by this CA/, "another CA's chain: said so");

  const material = await loadCaMaterial(ca.dir);
  const keys = await generateWorkloadKey();
  const spki = createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' });
  const old = await issueLeafCertificate(material.issuer, new Date(material.issuerCert.validTo), { spiffeId: ORDERS, subjectPublicKeySpki: spki, lifetimeMs: 3_600_000 }, new Date(Date.now() - 7_200_000));
  const expired = await sign({ csr: (await csrFor(ORDERS, keys)).csr }, {}, { cert: old.pem + material.issuerPem, key: keys.privateKeyPem });
  expectError(t, expired, 401, 'bad_svid');
  t.match(expired.json().message, /expired/);
});

// a certificate chaining to our roots that is no workload SVID of ours: an ID of another shape
// (the trust domain alone, a path of an operator's own) or a signing certificate. Renewed as
// what it named before (an ID no sidecar accepts and this CA never issues); a TLS review's find
t.test('renewal refused for a certificate that is no workload SVID of this CA', async (t) => {
  const material = await loadCaMaterial(ca.dir);
  const keys = await generateWorkloadKey();
  const spki = createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' });
  const issuerEnd = new Date(material.issuerCert.validTo);
  for (const id of ['spiffe://mesh.local', 'spiffe://mesh.local/ns/default/sa/orders', 'spiffe://mesh.local/svc/orders/extra']) {
    const leaf = await issueLeafCertificate(material.issuer, issuerEnd, { spiffeId: id, subjectPublicKeySpki: spki, lifetimeMs: 3_600_000 });
    const res = await sign({ csr: (await csrFor(id, keys)).csr }, {}, { cert: leaf.pem + material.issuerPem, key: keys.privateKeyPem });
    expectError(t, res, 403, 'identity_not_allowed');
    t.match(res.json().message, /is no workload ID this CA issues \(spiffe:\/\/mesh\.local\/svc\/NAME\)/, id);
  }
  const signer = await buildCertificate({
    subject: { organization: 'mesh.local' },
    issuer: material.issuer.name,
    subjectPublicKeySpki: spki,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingKey: material.issuer.key,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 6, value: ORDERS }] },
    ],
  });
  const res = await sign({ csr: (await csrFor(ORDERS, keys)).csr }, {}, { cert: signer.pem + material.issuerPem, key: keys.privateKeyPem });
  expectError(t, res, 401, 'bad_svid');
  t.match(res.json().message, /is no SVID leaf: the certificate is a CA certificate/);
});

t.test('413 for a body over 64 KiB', async (t) => {
  const big = JSON.stringify({ csr: 'x'.repeat(70 * 1024) });
  expectError(t, await sign(big, { authorization: `Bearer ${await token()}` }), 413, 'body_too_large');
});

t.test('unknown paths and methods', async (t) => {
  expectError(t, await callCa(ca.server.url, { path: '/v1/nope', ca: bundle }), 404, 'not_found');
  expectError(t, await callCa(ca.server.url, { path: '/v1/sign', ca: bundle }), 405, 'method_not_allowed');
  const b = await callCa(ca.server.url, { path: '/v1/bundle', ca: bundle });
  t.equal(b.status, 200);
  t.equal(b.text, bundle);
});

t.test('429 with Retry-After from a per-client rate limit, and the server keeps serving', async (t) => {
  const limited = await startTestCa({ rateLimit: { perSecond: 1, burst: 3 } });
  t.teardown(() => limited.close());
  const limitedBundle = await readFile(join(limited.dir, 'bundle.pem'), 'utf8');
  const statuses: number[] = [];
  let last;
  for (let i = 0; i < 5; i++) {
    last = await callCa(limited.server.url, { path: '/v1/bundle', ca: limitedBundle });
    statuses.push(last.status);
  }
  t.same(statuses, [200, 200, 200, 429, 429]);
  expectError(t, last!, 429, 'rate_limited');
  t.ok(Number(last!.headers['retry-after']) >= 1, 'Retry-After given');
  await new Promise((r) => setTimeout(r, 1100));
  t.equal((await callCa(limited.server.url, { path: '/v1/bundle', ca: limitedBundle })).status, 200, 'served again after waiting');
  t.equal((await callCa(limited.server.url, { path: '/healthz', ca: limitedBundle })).status, 200);
});

t.test('metrics count issuance and denials; the server is still healthy', async (t) => {
  const scrape = async () => {
    const res = await callCa(ca.server.url, { path: '/metrics', ca: bundle });
    t.equal(res.status, 200);
    t.match(res.text, /^# TYPE meshcar_ca_certificates_issued_total counter$/m, 'the issued family');
    t.match(res.text, /^# TYPE meshcar_ca_requests_denied_total counter$/m, 'the denied family');
    const value = (series: string) => {
      const line = res.text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    return { issued: value('meshcar_ca_certificates_issued_total'), tokenUsed: value('meshcar_ca_requests_denied_total{reason="token_used"}'), weakKey: value('meshcar_ca_requests_denied_total{reason="weak_key"}'), badToken: value('meshcar_ca_requests_denied_total{reason="bad_token"}') };
  };
  const before = await scrape();
  const issuedSoFar = ca.logLines.filter((l) => l.event === 'ca.issue' && l.result === 'issued').length;
  t.ok(issuedSoFar >= 10, `the tests above issued ${issuedSoFar} certificates`);
  t.equal(before.issued, issuedSoFar, 'every issuance of this file counted, across the restart');
  t.equal(before.tokenUsed, 2);
  t.equal(before.weakKey, 1);

  // one more of each: exactly one more on the counter it belongs to, none on the others
  t.equal((await issueWithToken()).res.status, 200);
  expectError(t, await sign({ csr: (await csrFor(ORDERS)).csr }, { authorization: 'Bearer not.a.token' }), 401, 'bad_token');
  const after = await scrape();
  t.equal(after.issued, (before.issued ?? NaN) + 1, 'one issuance: +1');
  t.equal(after.badToken, (before.badToken ?? 0) + 1, 'one denial: +1 on its reason');
  t.equal(after.tokenUsed, before.tokenUsed, 'other reasons unchanged');
  t.equal((await callCa(ca.server.url, { path: '/healthz', ca: bundle })).status, 200);
});
