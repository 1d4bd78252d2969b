// Failed TLS handshakes explained where they happen, on a real sidecar: each kind of failure
// (inbound: no client certificate, an unknown CA, expired, expired since the session now
// resumed, not yet valid, a foreign SPIFFE ID, plain HTTP on the TLS port, a certificate OpenSSL's
// chain check refuses for its extended key usage, a path length, a leaf as its issuer or name
// constraints; outbound: the wrong identity, a server certificate not for TLS servers) gives
// one warn line in words (once per peer address within the rate limit), its
// GET /debug/tls entry and its counter. Each kind comes from its own loopback address
// (127.0.0.x), so each has its own rate limit.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type IssuedLeaf, type TestPki } from '../helpers/pki.js';
import { chainBreakers, type BrokenChain, type ChainBreakers } from '../helpers/chain-breakers.js';
import { memoryLogger, openssl } from '../helpers/ca.js';
import { freePort } from '../helpers/process.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

let pki: TestPki;
let foreign: TestPki;
let app: TestApp;
let sidecar: Sidecar;
let inboundPort: number;
let adminPort: number;
let outboundPort: number;
const lines: Array<Record<string, unknown>> = [];
let breakers: ChainBreakers;
/** An upstream endpoint whose certificate is for TLS clients alone. */
let clientOnlyServer: tls.Server;

t.before(async () => {
  [pki, foreign] = await Promise.all([makePki(TD), makePki(TD)]);
  const own = await pki.issue(ORDERS);
  app = await startEchoApp();
  const dir = t.testdir({ 'svid.crt': own.chainPem, 'svid.key': own.privateKeyPem, 'bundle.pem': pki.bundlePem });
  breakers = chainBreakers(pki, dir);
  const clientOnly = await breakers.withEku(`spiffe://${TD}/svc/ledger`, 'clientAuth');
  clientOnlyServer = tls.createServer({ cert: clientOnly.chainPem, key: clientOnly.privateKeyPem, ALPNProtocols: ['h2'] }).on('tlsClientError', () => undefined);
  // an address of its own: the warn lines are rate-limited per peer address
  await new Promise<void>((resolve) => clientOnlyServer.listen(0, '127.0.0.31', resolve));
  // the outbound's upstream is this sidecar's own inbound, under the wrong expected identity
  inboundPort = await freePort();
  await writeFile(
    join(dir, 'orders.yaml'),
    [
      `service: orders`,
      `trustDomain: ${TD}`,
      `identity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}`,
      `inbound: {listen: "0.0.0.0:${inboundPort}", app: "http://127.0.0.1:${app.port}", sessionResumption: true}`,
      `outbound: {listen: "127.0.0.1:0", upstreams: {payments: {endpoints: ["127.0.0.1:${inboundPort}"], identity: "spiffe://${TD}/svc/payments"}, ledger: {endpoints: ["127.0.0.31:${(clientOnlyServer.address() as net.AddressInfo).port}"], identity: "spiffe://${TD}/svc/ledger"}}}`,
      `admin: {listen: "127.0.0.1:0"}`,
      `log: {level: info, access: false}`,
    ].join('\n'),
  );
  sidecar = new Sidecar(await loadSidecarConfig(join(dir, 'orders.yaml')), memoryLogger(lines));
  const addresses = await sidecar.start();
  adminPort = addresses.admin.port;
  outboundPort = addresses.outbound?.port as number;
});
t.teardown(async () => {
  await sidecar?.stop();
  await app?.close();
  clientOnlyServer?.close();
});

function adminGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: adminPort, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    }).on('error', reject);
  });
}

interface Entry {
  time: string;
  direction: string;
  peer: string;
  reason: string;
  message: string;
}

async function entriesFrom(address: string): Promise<Entry[]> {
  const { failures } = JSON.parse(await adminGet('/debug/tls')) as { failures: Entry[] };
  return failures.filter((f) => f.peer.startsWith(`${address}:`));
}

async function counter(direction: string, reason: string): Promise<number> {
  const match = new RegExp(`^meshcar_tls_handshake_failures_total\\{direction="${direction}",reason="${reason}"\\} (\\d+)$`, 'm').exec(await adminGet('/metrics'));
  return match ? Number(match[1]) : 0;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One TLS attempt from `localAddress` to the inbound; resolves when the sidecar has closed it. */
function attempt(localAddress: string, options: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: inboundPort, localAddress, ca: pki.bundlePem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'], ...options }, () => socket.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n'));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

function plainHttp(localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: inboundPort, localAddress }, () => socket.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n'));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

const withCert = (leaf: IssuedLeaf | BrokenChain): tls.ConnectionOptions => ({ cert: leaf.chainPem, key: leaf.privateKeyPem });

/**
 * The tests run side by side (each from its own address, with its own log rate limit); two of
 * them count reason="expired", so a reason's counter is checked by one test at a time.
 */
const counting = new Map<string, Promise<void>>();
async function oneAtATime<T>(reason: string, run: () => Promise<T>): Promise<T> {
  const previous = counting.get(reason) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  counting.set(reason, previous.then(() => mine));
  await previous;
  try {
    return await run();
  } finally {
    done();
  }
}

/** Twice from one address: two entries and +2 on the counter, one log line. */
function twice(t: Tap.Test, address: string, reason: string, fail: () => Promise<void>, words: RegExp): Promise<Entry[]> {
  return oneAtATime(reason, () => twiceNow(t, address, reason, fail, words));
}

async function twiceNow(t: Tap.Test, address: string, reason: string, fail: () => Promise<void>, words: RegExp): Promise<Entry[]> {
  const before = await counter('inbound', reason);
  await fail();
  await fail();
  await until(async () => (await entriesFrom(address)).length >= 2, `two /debug/tls entries from ${address}`);
  const entries = await entriesFrom(address);
  t.equal(entries.length, 2, 'both failures are in /debug/tls');
  t.match(entries[0], { direction: 'inbound', reason, message: words });
  t.ok(Date.parse(entries[0]!.time) >= Date.parse(entries[1]!.time), 'newest first');
  t.equal(await counter('inbound', reason), before + 2, `meshcar_tls_handshake_failures_total{reason="${reason}"} +2`);
  const logged = lines.filter((l) => l.component === 'tls' && String(l.peer).startsWith(`${address}:`));
  t.equal(logged.length, 1, 'one log line for the two: rate-limited per peer address');
  t.equal(logged[0]?.level, 40, 'at warn level');
  t.match(String(logged[0]?.msg), new RegExp(`^TLS handshake failed, inbound from ${address.replace(/\./g, '\\.')}:\\d+: ${words.source}`));
  return entries;
}

// Each test reads /metrics before and after its failures, and the admin server starts renders of
// /metrics at least 1 s apart: side by side, the tests share those renders instead of queueing
// for one each (every test has its own peer address and reason; see oneAtATime for the one
// reason two of them count).
t.jobs = 8;

t.test('no client certificate', (t) => twice(t, '127.0.0.11', 'no_client_cert', () => attempt('127.0.0.11', {}), /no client certificate: the caller presented none/).then(() => undefined));

t.test('a certificate from an unknown CA: its issuer and key id', async (t) => {
  const stranger = await foreign.issue(`spiffe://${TD}/svc/frontend`);
  const entries = await twice(t, '127.0.0.12', 'unknown_ca', () => attempt('127.0.0.12', withCert(stranger)), /certificate from an unknown CA: the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) was issued by "[^"]+" \(key id [0-9A-F:]+\), which is not in our trust bundle/);
  // the key id is the foreign issuer's, as openssl reads it
  const ski = (await openssl(['x509', '-noout', '-ext', 'subjectKeyIdentifier'], foreign.issuerPem)).split('\n')[1]?.trim();
  t.match(entries[0]?.message, `(key id ${ski})`);
});

t.test('an expired certificate: when', async (t) => {
  const old = await pki.issue(`spiffe://${TD}/svc/frontend`, { now: new Date(Date.now() - 3_600_000), lifetimeMs: 600_000 });
  await twice(t, '127.0.0.13', 'expired', () => attempt('127.0.0.13', withCert(old)), /the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) expired at \d{4}-\d\d-\d\dT[\d:.]+Z/);
});

// OpenSSL says CERT_HAS_EXPIRED (or NOT_YET_VALID) for any certificate of the path: the leaf's
// own date, still ahead (or passed), was quoted as when it expired (or starts)
t.test('an issuer expired above a leaf still valid: the leaf is not said to have expired', async (t) => {
  const leaf = await pki.issueUnderShortIssuer(`spiffe://${TD}/svc/frontend`, -30_000);
  await twice(t, '127.0.0.19', 'expired', () => attempt('127.0.0.19', withCert(leaf)), /the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) is valid until \S+, but an issuer on its path has expired \(an intermediate CA it sent, or a root of the trust bundle\): renew that issuer/);
});

t.test('an issuer not valid yet above a leaf valid now', async (t) => {
  const leaf = await pki.issueUnderShortIssuer(`spiffe://${TD}/svc/frontend`, 7_200_000, {}, 3_600_000);
  await twice(t, '127.0.0.20', 'not_yet_valid', () => attempt('127.0.0.20', withCert(leaf)), /the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) is valid since \S+, but an issuer on its path is not valid yet/);
});

t.test('a certificate not valid yet', async (t) => {
  const early = await pki.issue(`spiffe://${TD}/svc/frontend`, { now: new Date(Date.now() + 3_600_000), lifetimeMs: 3_600_000 });
  await twice(t, '127.0.0.14', 'not_yet_valid', () => attempt('127.0.0.14', withCert(early)), /the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) is not valid before \S+ \(a clock out of step\?\)/);
});

t.test('a SPIFFE ID of another trust domain', async (t) => {
  const other = await pki.issueWithUris(['spiffe://acme.internal/svc/frontend']);
  await twice(t, '127.0.0.15', 'bad_identity', () => attempt('127.0.0.15', withCert(other)), /no usable SPIFFE ID: spiffe:\/\/acme\.internal\/svc\/frontend belongs to trust domain "acme\.internal", not "mesh\.local"/);
});

t.test('a certificate that expired after its full handshake, on a resumed TLS session: the path and the caller', async (t) => {
  // refused after the handshake (Node reports the first handshake's verdict on a resumption),
  // while the caller is still connected: its certificate is read then, not copied earlier
  // 3 s: at least 2 s of life once notAfter is cut to a whole second, for the first handshake on a loaded machine
  const leaf = await pki.issue(`spiffe://${TD}/svc/frontend`, { lifetimeMs: 3_000 });
  const options = { ...withCert(leaf), maxVersion: 'TLSv1.2' as const };
  const session = await new Promise<Buffer>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: inboundPort, localAddress: '127.0.0.17', ca: pki.bundlePem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'], ...options });
    socket.once('session', (ticket: Buffer) => {
      socket.destroy();
      resolve(ticket);
    });
    socket.on('error', reject);
  });
  const expiresAt = Date.parse(new X509Certificate(leaf.certificatePem).validTo);
  await until(async () => Date.now() >= expiresAt, 'the client certificate to expire');
  await twice(t, '127.0.0.17', 'expired', () => attempt('127.0.0.17', { ...options, session }), /the caller's certificate \(spiffe:\/\/mesh\.local\/svc\/frontend\) path expired at \S+ \(resumed TLS session\)/);
});

t.test('plain HTTP on the TLS port', async (t) => {
  await twice(t, '127.0.0.16', 'protocol', () => plainHttp('127.0.0.16'), /protocol mismatch: plain HTTP sent to a TLS port/);
});

t.test('outbound: the upstream is not the identity expected', async (t) => {
  const before = await counter('outbound', 'identity_mismatch');
  const res = await request(outboundPort, { path: '/x', headers: { host: 'payments' } });
  t.equal(res.status, 502);
  await until(async () => (await counter('outbound', 'identity_mismatch')) > before, 'the outbound counter');
  const { failures } = JSON.parse(await adminGet('/debug/tls')) as { failures: Entry[] };
  const entry = failures.find((f) => f.direction === 'outbound' && f.reason !== 'invalid_certificate');
  t.match(entry, { peer: `127.0.0.1:${inboundPort}`, reason: 'identity_mismatch', message: /^identity mismatch: expected spiffe:\/\/mesh\.local\/svc\/payments, but the server is spiffe:\/\/mesh\.local\/svc\/orders$/ });
  t.ok(lines.some((l) => l.component === 'tls' && l.direction === 'outbound' && /^TLS handshake failed, outbound to 127\.0\.0\.1:\d+: identity mismatch: expected/.test(String(l.msg))), 'the log line');
});

// Refused by OpenSSL's chain check for what the certificate is, not for its CA or dates: Node
// names the verdict on the socket and reports a bare ECONNRESET, which was all the words said
// ("TLS handshake failed: socket hang up", reason other, no certificate named).
const FRONTEND = 'spiffe:\\/\\/mesh\\.local\\/svc\\/frontend';
const chainVerdicts: Array<[string, string, () => Promise<BrokenChain>, RegExp]> = [
  ['the wrong extended key usage (serverAuth alone)', '127.0.0.21', () => breakers.withEku(`spiffe://${TD}/svc/frontend`, 'serverAuth'), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "[^"]*meshcar issuer CA", is not for TLS client authentication: its extended key usage lacks clientAuth \\(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\\)`)],
  ['an intermediate below an issuer of path length 0', '127.0.0.22', () => breakers.belowPathLength(`spiffe://${TD}/svc/frontend`), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "CN=odd-\\d+", comes through more intermediate CAs than an issuer's path length constraint allows .*\\(OpenSSL: "path length constraint exceeded", PATH_LENGTH_EXCEEDED\\)`)],
  ['a leaf used as an issuer', '127.0.0.23', () => breakers.signedByLeaf(`spiffe://${TD}/svc/frontend`), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "O=mesh\\.local", was signed by a certificate that is no CA .*: a leaf used as an issuer\\? \\(OpenSSL: "key usage does not include certificate signing"\\)`)],
  // OpenSSL says INVALID_PURPOSE for the keyUsage too, and for an issuer's extended key usage: the words say which
  ['a keyUsage without digitalSignature (keyEncipherment alone)', '127.0.0.25', () => pki.issueWithUris([`spiffe://${TD}/svc/frontend`], { keyUsage: { keyEncipherment: true } }), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "[^"]*meshcar issuer CA", is not for TLS client authentication: its keyUsage has none of digitalSignature and keyAgreement, which a TLS client needs \\(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\\)`)],
  // keyAgreement passes OpenSSL's keyUsage check for a client: the extended key usage is what refused it
  ['keyAgreement alone and serverAuth alone', '127.0.0.27', () => pki.issueWithUris([`spiffe://${TD}/svc/frontend`], { keyUsage: { keyAgreement: true }, extKeyUsage: { serverAuth: true } }), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "[^"]*meshcar issuer CA", is not for TLS client authentication: its extended key usage lacks clientAuth \\(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\\)`)],
  ['an issuer whose extended key usage is serverAuth alone', '127.0.0.26', () => breakers.underIssuerEku(`spiffe://${TD}/svc/frontend`, 'serverAuth'), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "CN=odd-\\d+", is not for TLS client authentication: an issuer's extended key usage lacks clientAuth \\(the certificate's own allows it\\), or its nsCertType forbids it \\(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\\)`)],
  ['a name outside an issuer\'s name constraints', '127.0.0.24', () => breakers.outsideNameConstraints(`spiffe://${TD}/svc/frontend`), new RegExp(`invalid certificate: the caller's certificate \\(${FRONTEND}\\), issued by "CN=odd-\\d+", has a name an issuer's name constraints do not allow \\(OpenSSL: "permitted subtree violation"\\)`)],
];
for (const [name, address, make, words] of chainVerdicts) {
  t.test(`${name}: the verdict and the certificate`, async (t) => {
    const broken = await make();
    // a leaf used as an issuer too: its address waits no more (the handshake gate judged the
    // chain before OpenSSL parsed it, where the last stop read its unlinked bytes as costly)
    await twice(t, address, 'invalid_certificate', () => attempt(address, withCert(broken)), words);
  });
}

t.test('outbound: a server certificate not for TLS servers (clientAuth alone)', async (t) => {
  const before = await counter('outbound', 'invalid_certificate');
  const res = await request(outboundPort, { path: '/x', headers: { host: 'ledger' } });
  t.equal(res.status, 502, res.body);
  await until(async () => (await counter('outbound', 'invalid_certificate')) > before, 'the outbound counter');
  const { failures } = JSON.parse(await adminGet('/debug/tls')) as { failures: Entry[] };
  const peer = `127.0.0.31:${(clientOnlyServer.address() as net.AddressInfo).port}`;
  const words = /^invalid certificate: the server's certificate \(spiffe:\/\/mesh\.local\/svc\/ledger\), issued by "[^"]*meshcar issuer CA", is not for TLS server authentication: its extended key usage lacks serverAuth \(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\)$/;
  t.match(failures.find((f) => f.peer === peer), { direction: 'outbound', reason: 'invalid_certificate', message: words });
  const logged = lines.find((l) => l.component === 'tls' && l.peer === peer);
  t.match(logged, { level: 40, reason: 'invalid_certificate' }, 'one warn line');
  t.match(String(logged?.msg), `TLS handshake failed, outbound to ${peer}: invalid certificate: the server's certificate (spiffe://mesh.local/svc/ledger)`);
});
