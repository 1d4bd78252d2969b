// Issuer rotation against a running CA server: `meshcar ca rotate-issuer` makes a new issuer
// under the same root and the server signs with it from its very next signing (it watches its
// folder; no restart, no signal), the CA server's own certificate follows, leaves from the old
// issuer stay valid (openssl agrees, and they still renew over mTLS). Join tokens are signed by
// a key of their own: a token made before the rotation is still accepted after it, and one
// whose key was retired is refused with bad_token. With `issuerRotation` the server rotates by
// itself; here with 3-second issuers, while a client keeps signing without one failure, and at
// start when its issuer expired while it was down (the start does not fail on it). CA
// commands take the folder's lock, so two never interleave their writes; a lock naming this
// process's pid that it does not hold (a restarted container's pid 1) is taken over, and an
// empty one (its holder still writing its pid) is waited for until it is 2 s old.

import t from 'tap';
import tls from 'node:tls';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { callCa, makeCaDir, openssl, runCli, startTestCa, type TestCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { caToken, openAuthority } from '../../src/ca/commands.js';
import { rotateIssuer } from '../../src/ca/lifecycle.js';
import { splitPemCertificates } from '../../src/pki/der.js';
import type { CaStatus } from '../../src/ca/status.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

interface Issued {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly keyPem: string;
}

async function sign(ca: TestCa, auth: { token: string } | { cert: string; key: string }, ttl = '1h'): Promise<Issued> {
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const keys = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ORDERS);
  const res = await callCa(ca.server.url, {
    method: 'POST',
    path: '/v1/sign',
    body: JSON.stringify({ csr, ttl }),
    ca: bundle,
    ...('token' in auth ? { headers: { authorization: `Bearer ${auth.token}` } } : auth),
  });
  return { status: res.status, body: res.json(), keyPem: keys.privateKeyPem };
}

/** Serial of the certificate right after the leaf in a chain (the issuer that signed it). */
function issuerSerialOf(chain: string): string {
  return new X509Certificate(splitPemCertificates(chain)[1] as string).serialNumber.toLowerCase();
}

function serverIssuerSerial(port: number, bundle: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: bundle }, () => {
      const issuer = socket.getPeerX509Certificate()?.issuerCertificate;
      socket.destroy();
      resolve(issuer?.serialNumber.toLowerCase() ?? '');
    });
    socket.on('error', reject);
  });
}

const issuerFileSerial = async (dir: string) => new X509Certificate(await readFile(join(dir, 'issuer.crt'))).serialNumber.toLowerCase();

t.test('rotate-issuer: the next signing uses the new issuer; old leaves stay valid and renew; tokens survive', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const tokenBefore = await caToken(ca.dir, 'orders', 3_600_000, false);
  const first = await sign(ca, { token: tokenBefore });
  t.equal(first.status, 200);
  const oldIssuer = await issuerFileSerial(ca.dir);
  t.equal(issuerSerialOf(String(first.body.chain)), oldIssuer);

  const rotated = await runCli(['ca', 'rotate-issuer', '--dir', ca.dir]);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /^new issuer serial [0-9a-f]+ valid until \S+; it signs from the CA server's next signing\n$/);
  const newIssuer = await issuerFileSerial(ca.dir);
  t.not(newIssuer, oldIssuer);

  const afterByToken = await sign(ca, { token: tokenBefore });
  t.equal(afterByToken.status, 200, 'a token made before the rotation is still accepted');
  t.equal(issuerSerialOf(String(afterByToken.body.chain)), newIssuer, 'the very next signing uses the new issuer');
  t.equal(await serverIssuerSerial(ca.server.port, bundle), newIssuer, 'the CA server presents a certificate from the new issuer');

  // the old leaf: still valid for openssl, and it renews over mTLS
  const dir = t.testdir({ 'old.pem': String(first.body.chain) });
  const verified = await openssl(['verify', '-CAfile', join(ca.dir, 'bundle.pem'), '-untrusted', join(dir, 'old.pem'), join(dir, 'old.pem')]);
  t.match(verified, /OK/, 'a leaf of the old issuer still verifies');
  const renewed = await sign(ca, { cert: String(first.body.chain), key: first.keyPem });
  t.equal(renewed.status, 200, `renewal with a leaf of the old issuer: ${JSON.stringify(renewed.body)}`);
  t.equal(issuerSerialOf(String(renewed.body.chain)), newIssuer);

  const status = JSON.parse((await runCli(['ca', 'status', '--dir', ca.dir, '--json'])).stdout) as CaStatus;
  t.same(status.issuers.map((i) => [i.serial, i.signing]), [[newIssuer, true], [oldIssuer, false]], 'status lists the signing issuer and the previous one');
  t.ok(ca.logLines.some((l) => l.msg === 'CA reloaded' && l.issuerSerial === newIssuer), 'the server logged the reload');
});

t.test('token keys: rotate-token-key keeps the previous key verifying; a retired key is refused with bad_token', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const first = await caToken(ca.dir, 'orders', 3_600_000, false);
  t.equal((await runCli(['ca', 'rotate-token-key', '--dir', ca.dir])).code, 0);
  const second = await caToken(ca.dir, 'orders', 3_600_000, false);
  t.equal((await sign(ca, { token: first })).status, 200, 'the previous key still verifies');
  const again = await runCli(['ca', 'rotate-token-key', '--dir', ca.dir]);
  t.match(again.stdout, /1 older key\(s\) retired/);
  const refused = await sign(ca, { token: first });
  t.equal(refused.status, 401);
  t.equal(refused.body.error, 'bad_token');
  t.match(String(refused.body.message), /retired/);
  t.equal((await sign(ca, { token: second })).status, 200, 'the key before the current one still verifies');
  t.equal((await sign(ca, { token: await caToken(ca.dir, 'orders', 3_600_000, false) })).status, 200);
});

t.test('issuerRotation: the server rotates 3-second issuers by itself while a client signs without a failure', async (t) => {
  const dir = await makeCaDir();
  await rotateIssuer(dir, { lifetimeMs: 3000 });
  const ca = await startTestCa({ issuerRotation: { beforeMs: 2000, ttlMs: 3000 } }, dir);
  t.teardown(() => ca.close());
  const token = await caToken(dir, 'orders', 3_600_000, false);
  const issuers = new Set<string>();
  const failures: string[] = [];
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && issuers.size < 3) {
    const issued = await sign(ca, { token });
    if (issued.status !== 200) failures.push(JSON.stringify(issued.body));
    else {
      issuers.add(issuerSerialOf(String(issued.body.chain)));
      const leaf = new X509Certificate(String(issued.body.certificate));
      const issuer = new X509Certificate(splitPemCertificates(String(issued.body.chain))[1] as string);
      if (Date.parse(leaf.validTo) > Date.parse(issuer.validTo)) failures.push('a leaf outlives its issuer');
    }
    await sleep(200);
  }
  t.same(failures, [], 'every signing succeeded');
  t.ok(issuers.size >= 3, `leaves came from ${issuers.size} issuers in turn`);
  t.ok(ca.logLines.filter((l) => l.event === 'ca.issuer_rotated' && l.automatic === true).length >= 2, 'each automatic rotation is logged');
  const status = JSON.parse((await runCli(['ca', 'status', '--dir', dir, '--json'])).stdout) as CaStatus;
  t.ok(Date.parse(status.issuers[0]?.notAfter ?? '') - Date.now() > 0, 'the signing issuer is valid');
});

t.test('one change of the CA folder at a time: a step waits for a live lock, takes over a stale one', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, '.lock');
  await writeFile(lock, '999999999'); // no such process: left by a crash
  await rotateIssuer(dir);
  t.notOk(existsSync(lock), 'a stale lock is taken over and released');
  await writeFile(lock, String(process.pid)); // a live holder, done 300 ms later
  const started = Date.now();
  const released = sleep(300).then(() => rm(lock));
  const cli = await runCli(['ca', 'rotate-issuer', '--dir', dir]);
  await released;
  t.equal(cli.code, 0, cli.stderr);
  t.ok(Date.now() - started >= 300, 'the command waited for the holder');
  // our own pid, not held by us: an earlier process with this pid (a container's pid 1, killed
  // holding the lock and restarted as pid 1 again) left it
  await writeFile(lock, String(process.pid));
  const before = Date.now();
  await rotateIssuer(dir);
  t.ok(Date.now() - before < 5_000, 'a lock naming this process, which it does not hold, is taken over at once');
  t.notOk(existsSync(lock), 'and released');
  // empty: made by a holder that has not written its pid yet, so waited for; one left empty
  // by a holder that died making it is taken over once it is older than any write takes
  await writeFile(lock, '');
  const emptySince = Date.now();
  const emptied = sleep(300).then(() => rm(lock, { force: true }));
  const doneAt = await rotateIssuer(dir).then(() => Date.now());
  await emptied;
  t.ok(doneAt - emptySince >= 300, 'a fresh empty lock is a holder writing its pid: waited for');
  await writeFile(lock, '');
  await utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  await rotateIssuer(dir);
  t.notOk(existsSync(lock), 'an empty lock a minute old is taken over');
  // two changes in this one process still take turns
  const kept = (await readdir(join(dir, 'issuers'))).length;
  await Promise.all([rotateIssuer(dir), rotateIssuer(dir)]);
  t.equal((await readdir(join(dir, 'issuers'))).length, kept + 2, 'two rotations, each replacing the issuer the other made');
});

t.test('an expired issuer: issuing is refused saying how to mend it; rotate-issuer mends a running CA', async (t) => {
  const dir = await makeCaDir();
  const short = await rotateIssuer(dir, { lifetimeMs: 1500 });
  const ca = await startTestCa({}, dir);
  t.teardown(() => ca.close());
  const token = await caToken(dir, 'orders', 3_600_000, false);
  await sleep(Math.max(0, Date.parse(short.issuer.validTo) - Date.now()) + 50);
  // the CA server's own certificate ended with its issuer: clients cannot even connect
  await t.rejects(sign(ca, { token }), { code: 'CERT_HAS_EXPIRED' });
  const offline = await runCli(['ca', 'issue', '--dir', dir, '--service', 'orders', '--out', join(t.testdir(), 'out')]);
  t.equal(offline.code, 1);
  t.match(offline.stderr, /^meshcar: the CA's issuer expired at \S+: run "meshcar ca rotate-issuer --dir .*" \(or set issuerRotation in the CA config\)\n$/);
  t.equal((await runCli(['ca', 'rotate-issuer', '--dir', dir])).code, 0);
  // its own renewal timer looks at the folder: a new certificate from the new issuer within a second
  let status = 0;
  for (let i = 0; i < 60 && status !== 200; i++) {
    status = await sign(ca, { token }).then((r) => r.status, () => 0);
    if (status !== 200) await sleep(100);
  }
  t.equal(status, 200, 'the running CA signs again, with no restart');
});

t.test('an expired issuer refuses a single-use token before spending it: after rotate-issuer the same token signs', async (t) => {
  // the CA server cannot be reached then (its own certificate ended with the issuer): the
  // authority as the server holds it, in this process
  const dir = await makeCaDir();
  const short = await rotateIssuer(dir, { lifetimeMs: 1500 });
  const token = await caToken(dir, 'orders', 3_600_000, true);
  await sleep(Math.max(0, Date.parse(short.issuer.validTo) - Date.now()) + 50);
  const keys = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ORDERS);
  const limits = { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 };
  const expired = await openAuthority(dir, limits);
  await t.rejects(expired.sign(await expired.grantFromToken(token), csr), { code: 'ca_missing', message: /the CA's issuer expired at/ });
  t.notMatch(await readFile(join(dir, 'used-tokens.json'), 'utf8').catch(() => ''), JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).jti, 'the token was not spent');
  await rotateIssuer(dir, {});
  const renewed = await openAuthority(dir, limits);
  const issued = await renewed.sign(await renewed.grantFromToken(token), csr);
  t.equal(issued.spiffeId, ORDERS, 'the same single-use token signs once the issuer is new');
});

t.test('issuerRotation: an issuer that expired while the CA was down is rotated before the server starts', async (t) => {
  const dir = await makeCaDir();
  const short = await rotateIssuer(dir, { lifetimeMs: 1500 });
  await sleep(Math.max(0, Date.parse(short.issuer.validTo) - Date.now()) + 50);
  const ca = await startTestCa({ issuerRotation: { beforeMs: 2000, ttlMs: 3_600_000 } }, dir);
  t.teardown(() => ca.close());
  const issued = await sign(ca, { token: await caToken(dir, 'orders', 3_600_000, false) });
  t.equal(issued.status, 200, 'the CA started and signs');
  t.ok(ca.logLines.some((l) => l.event === 'ca.issuer_rotated' && l.automatic === true), 'with a new issuer, rotated at start');
});
