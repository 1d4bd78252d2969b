// Root rotation step by step against a running CA server with 3-second leaves, through the real
// command line: each step's refusals (one line: why, and what to do), the two-root bundle in
// every signing response and at GET /v1/bundle from `root add` on, leaves under the new root
// from `root activate` on that verify against either root (the chain carries a cross
// certificate), so a client that knows only the old root still reaches the CA; and after
// `root retire` a one-root bundle, and tokens made before activation refused with bad_token.

import t from 'tap';
import tls from 'node:tls';
import https from 'node:https';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { callCa, endWithSvidProof, makeCaDir, openssl, runCli, startTestCa, type TestCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { splitPemCertificates } from '../../src/pki/der.js';
import { caToken } from '../../src/ca/commands.js';
import { rootActivate, rootAdd, rootRetire, rotateTokenKey } from '../../src/ca/lifecycle.js';
import { caStatus, type CaStatus } from '../../src/ca/status.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

function oneLine(t: Tap.Test, text: string, pattern: RegExp): void {
  t.equal(text.trim().split('\n').length, 1, `one line: ${text}`);
  t.match(text.trim(), pattern);
}

async function signWithToken(ca: TestCa, token: string): Promise<Record<string, unknown> & { status: number }> {
  const keys = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ORDERS);
  const res = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` }, ca: await readFile(join(ca.dir, 'bundle.pem'), 'utf8') });
  return { status: res.status, ...res.json() };
}

/** Waits until the step the status names as next is allowed (no fixed sleep: the CA says when). */
async function untilAllowed(dir: string): Promise<void> {
  // read in-process (what `meshcar ca status --json` prints, checked at the end): a CLI process
  // here would only add its start-up to the wait
  const status = await caStatus(dir);
  const wait = Date.parse(status.rootRotation.next?.allowedFrom ?? '') - Date.now();
  if (wait > 0) await sleep(wait + 50);
}

/** Connects to the CA trusting only `rootPem`; resolves with whether the chain verified. */
function verifiesCa(port: number, rootPem: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: rootPem }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

// the first test spends most of its time waiting out two leaf lifetimes; the other two (their
// own CA folder, or none) run beside it
t.jobs = 3;

t.test('root add → activate → retire with a running CA server', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3000, defaultTtlMs: 3000 });
  t.teardown(() => ca.close());
  const dir = ca.dir;
  const oldRoot = await readFile(join(dir, 'root.crt'), 'utf8');
  const tokenBefore = await caToken(dir, 'orders', 3_600_000, false);

  const [early, earlyRetire] = await Promise.all([runCli(['ca', 'root', 'activate', '--dir', dir]), runCli(['ca', 'root', 'retire', '--dir', dir])]);
  t.equal(early.code, 1);
  oneLine(t, early.stderr, /^meshcar: root activate refused: there is no pending root; start with "meshcar ca root add --dir /);
  oneLine(t, earlyRetire.stderr, /root retire refused: no root rotation is under way/);

  // step 1
  const added = await runCli(['ca', 'root', 'add', '--dir', dir]);
  t.equal(added.code, 0, added.stderr);
  t.match(added.stdout, /added pending root serial [0-9a-f]+; bundle\.pem holds 2 roots/);
  const newRoot = await readFile(join(dir, 'root-pending.crt'), 'utf8');
  // refused until a leaf lifetime has passed (in-process, at once: a CLI process may take
  // seconds to start on a loaded machine; the CLI's wording is checked in the --force test)
  await t.rejects(rootActivate(dir), { code: 'forbidden', message: /^root activate refused: the new root was added at / });
  const twoRoots = await readFile(join(dir, 'bundle.pem'), 'utf8');
  t.equal(splitPemCertificates(twoRoots).length, 2, 'bundle.pem holds both roots');
  t.equal((await callCa(ca.server.url, { path: '/v1/bundle', ca: oldRoot })).text, twoRoots, 'GET /v1/bundle hands out both');
  const during = await signWithToken(ca, tokenBefore);
  t.equal(during.status, 200);
  t.equal(during.bundle, twoRoots, 'so does every signing response');
  t.ok(new X509Certificate(splitPemCertificates(String(during.chain))[1] as string).checkIssued(new X509Certificate(oldRoot)), 'the old root still signs');
  oneLine(t, (await runCli(['ca', 'root', 'add', '--dir', dir])).stderr, /root add refused: a root rotation is already under way .*finish it with "meshcar ca root activate --dir /);

  // step 2, once allowed
  t.equal(await readFile(join(dir, 'root-pending.crt'), 'utf8'), newRoot, 'nothing changed');
  await untilAllowed(dir);
  const activated = await runCli(['ca', 'root', 'activate', '--dir', dir]);
  t.equal(activated.code, 0, activated.stderr);
  t.equal(activated.stderr, '', 'no warning without --force');
  await t.rejects(rootRetire(dir), { code: 'forbidden', message: /^root retire refused: leaves signed under the old root can be valid until / });
  const tokenAfter = await caToken(dir, 'orders', 3_600_000, false);
  const signed = await signWithToken(ca, tokenBefore);
  t.equal(signed.status, 200, 'a token made before activation still works');
  const chain = splitPemCertificates(String(signed.chain));
  t.equal(chain.length, 3, 'leaf, issuer, cross certificate');
  t.ok(new X509Certificate(chain[1] as string).checkIssued(new X509Certificate(newRoot)), 'the new root signs now');
  const files = t.testdir({ 'chain.pem': String(signed.chain), 'old.pem': oldRoot, 'new.pem': newRoot });
  for (const root of ['old.pem', 'new.pem']) {
    const out = await openssl(['verify', '-CAfile', join(files, root), '-untrusted', join(files, 'chain.pem'), join(files, 'chain.pem')]);
    t.match(out, /OK/, `the new leaf verifies against the ${root.slice(0, 3)} root alone`);
  }
  t.ok(await verifiesCa(ca.server.port, oldRoot), 'a client that knows only the old root still verifies the CA server');
  t.ok(await verifiesCa(ca.server.port, newRoot), 'so does one that knows only the new root');

  // step 3, once allowed
  await untilAllowed(dir);
  const retired = await runCli(['ca', 'root', 'retire', '--dir', dir]);
  t.equal(retired.code, 0, retired.stderr);
  const oneRoot = await readFile(join(dir, 'bundle.pem'), 'utf8');
  t.equal(oneRoot, newRoot, 'bundle.pem holds only the new root');
  t.equal((await callCa(ca.server.url, { path: '/v1/bundle', ca: newRoot })).text, newRoot);
  const refused = await signWithToken(ca, tokenBefore);
  t.equal(refused.status, 401);
  t.equal(refused.error, 'bad_token', 'a token whose key was retired with the old root is refused');
  const fresh = await signWithToken(ca, tokenAfter);
  t.equal(fresh.status, 200, 'a token made after activation works');
  t.equal(fresh.bundle, newRoot);
  t.equal(splitPemCertificates(String(fresh.chain)).length, 2, 'no cross certificate any more');
  const status = JSON.parse((await runCli(['ca', 'status', '--dir', dir, '--json'])).stdout) as CaStatus;
  t.same(status.roots.map((r) => r.role), ['active']);
  t.equal(status.rootRotation.step, 'none');
  t.ok(status.issuers.every((i) => i.rootSerial === status.roots[0]?.serial), 'no issuer of the retired root is listed');
});

t.test('`meshcar ca root` lists its three steps; an unknown one is one line', async (t) => {
  const group = await runCli(['ca', 'root']);
  t.equal(group.code, 2);
  t.match(group.stdout, /meshcar ca root add --dir DIR[\s\S]+meshcar ca root activate --dir DIR \[--force\][\s\S]+meshcar ca root retire --dir DIR \[--force\]/);
  const unknown = await runCli(['ca', 'root', 'rotate']);
  t.equal(unknown.code, 2);
  oneLine(t, unknown.stderr, /^meshcar: unknown command "ca root rotate"; run "meshcar ca root --help" for the list$/);
});

t.test('refusals are one line saying why and what to do; --force goes ahead with a one-line warning', async (t) => {
  // no CA server has run here: the leaf lifetime is the default day, so every step is early
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  await rootAdd(dir);
  const tooSoon = await runCli(['ca', 'root', 'activate', '--dir', dir]);
  t.equal(tooSoon.code, 1);
  oneLine(t, tooSoon.stderr, /^meshcar: root activate refused: the new root was added at \S+ and may not have reached every sidecar yet \(each gets it with its next certificate, within one leaf lifetime, 1d\); wait until \S+ \((24h|1d) from now\), or pass --force once every sidecar shows meshcar_identity_bundle_roots 2$/);
  const forced = await runCli(['ca', 'root', 'activate', '--dir', dir, '--force']);
  t.equal(forced.code, 0, forced.stderr);
  oneLine(t, forced.stderr, /^meshcar: warning: root activate forced: the new root was added at .*; going ahead because of --force$/);
  t.match(forced.stdout, /^activated root serial/);
  const early = await runCli(['ca', 'root', 'retire', '--dir', dir]);
  t.equal(early.code, 1);
  oneLine(t, early.stderr, /^meshcar: root retire refused: leaves signed under the old root can be valid until \S+ \(activated at \S+, leaf lifetime 1d\), and peers would stop trusting them; wait (24h|1d), or pass --force if no such leaf is in use$/);
  const retired = await runCli(['ca', 'root', 'retire', '--dir', dir, '--force']);
  t.equal(retired.code, 0, retired.stderr);
  oneLine(t, retired.stderr, /^meshcar: warning: root retire forced: leaves signed under the old root can be valid/);
});

t.test('after an emergency root retire, a leaf of the retired root renews nothing: on a keep-alive connection made before, or as the first request after', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundleBefore = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  /** A CSR for orders, and the key it was made with. */
  const csr = async () => {
    const keys = await generateWorkloadKey();
    return { key: keys.privateKeyPem, csr: await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ORDERS) };
  };
  const sign = (agent: https.Agent | false, body: { csr: string }, auth: { cert?: string; key?: string; token?: string }, ca2: string) =>
    new Promise<{ status: number; text: string; port: number | undefined }>((resolve, reject) => {
      const req = https.request(new URL('/v1/sign', ca.server.url), { method: 'POST', servername: 'localhost', agent, ca: ca2, headers: { 'content-type': 'application/json', ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}) } }, (res) => {
        let text = '';
        const port = res.socket.localPort; // before the socket goes back to the agent
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, port }));
      });
      req.on('error', reject);
      if (auth.cert) endWithSvidProof(req, { cert: auth.cert, key: auth.key ?? '' }, JSON.stringify(body));
      else req.end(JSON.stringify(body));
    });
  // two SVIDs under the first root
  const a = await csr();
  const svidA = JSON.parse((await sign(false, a, { token }, bundleBefore)).text) as { chain: string };
  const b = await csr();
  const svidB = JSON.parse((await sign(false, b, { token }, bundleBefore)).text) as { chain: string };
  // A renews over a keep-alive connection that stays open
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const before = await sign(agent, await csr(), { cert: svidA.chain, key: a.key }, bundleBefore);
  t.equal(before.status, 200, 'a renewal by SVID before the rotation');

  await rootAdd(ca.dir);
  await rootActivate(ca.dir, { force: true });
  await rootRetire(ca.dir, { force: true });
  const bundleAfter = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  t.notOk(bundleAfter.includes(bundleBefore.trim()), 'the first root is out of the bundle');

  // B, on a new connection, is the first request after the retire (its handshake is made against
  // the roots of now: handshake-freshness.ts; were the context still the old one, the per-request
  // check of client-auth.ts refuses it), its chain padded with the new issuer (signed by a current root, but not B's
  // issuer: a presented list is no path unless each certificate signed the one before)
  const newIssuer = await readFile(join(ca.dir, 'issuer.crt'), 'utf8');
  const first = await sign(false, await csr(), { cert: svidB.chain + newIssuer, key: b.key }, bundleBefore + bundleAfter);
  t.equal(first.status, 401, `the first request after the retire: refused (${first.text.slice(0, 160)})`);
  t.match(first.text, /bad_svid/);
  t.match(first.text, /under a root this CA has retired; request a new SVID with a join token|does not chain to a root this CA still trusts/);
  const kept = await sign(agent, await csr(), { cert: svidA.chain, key: a.key }, bundleBefore);
  t.equal(kept.port, before.port, 'on the keep-alive connection made before the retire');
  t.equal(kept.status, 401, `refused there too (${kept.text.slice(0, 160)})`);
  // a token still works: the way back for a workload cut off
  t.equal((await sign(false, await csr(), { token: await caToken(ca.dir, 'orders', 3_600_000, false) }, bundleAfter)).status, 200, 'a new token signs under the new root');
});

t.test('retire says which tokens it refuses when rotate-token-key ran between add and activate', async (t) => {
  const dir = await makeCaDir();
  await rootAdd(dir);
  await rotateTokenKey(dir);
  const made = (JSON.parse(await readFile(join(dir, 'token-keys.json'), 'utf8')) as { keys: Array<{ state: string; createdAt: string }> }).keys.find((k) => k.state === 'current')?.createdAt;
  await rootActivate(dir, { force: true });
  const retired = await rootRetire(dir, { force: true });
  t.match(retired.summary, `tokens made before ${made} are refused from now on (the current token key was made then`, retired.summary);
  t.notMatch(retired.summary, 'tokens made before "root activate" are refused', 'not the tokens made before activate: those of the key made after add keep working');

  const plain = await makeCaDir();
  await rootAdd(plain);
  await rootActivate(plain, { force: true });
  t.match((await rootRetire(plain, { force: true })).summary, /tokens made before "root activate" are refused from now on$/, 'the usual case says so as before');
});
