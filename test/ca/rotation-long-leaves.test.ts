// Root rotation vs leaves that live longer than the running CA server's maxTtl: an offline
// `ca issue --ttl 720h`, and leaves of a CA server restarted since with a smaller maxTtl. Neither
// `root activate` nor `root retire` may go ahead (without --force) while such a leaf of the old
// root is valid: each refusal names the moment it may. The steps run in-process with a given
// `now`, as the waits are weeks long.

import t from 'tap';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, makeCaDir, runCli, startTestCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { caToken } from '../../src/ca/commands.js';
import { caStatus } from '../../src/ca/status.js';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';

const H = 3_600_000;

t.test('an offline `ca issue --ttl 720h` holds both steps back until that leaf expires', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const issued = await runCli(['ca', 'issue', '--dir', dir, '--service', 'orders', '--out', join(dir, '..', 'orders'), '--ttl', '720h']);
  t.equal(issued.code, 0, issued.stderr);
  const notAfter = Date.parse(/valid until (\S+)/.exec(issued.stdout)?.[1] ?? '');
  t.ok(notAfter > Date.now() + 719 * H, 'a 30-day leaf');

  const t0 = Date.now();
  const added = await rootAdd(dir, { now: new Date(t0) });
  t.match(added.summary, `"root activate" is allowed from ${new Date(notAfter).toISOString()} (when the longest leaf issued so far expires)`);
  await t.rejects(rootActivate(dir, { now: new Date(t0 + 25 * H) }), {
    code: 'forbidden',
    message: `root activate refused: the new root was added at ${new Date(t0).toISOString()} and may not have reached every sidecar yet (each gets it with its next certificate, before its current one expires, and a leaf issued before the add is valid until ${new Date(notAfter).toISOString()}); wait until ${new Date(notAfter).toISOString()}`,
  });
  t.equal((await caStatus(dir)).rootRotation.next?.allowedFrom, new Date(notAfter).toISOString(), '`ca status` names the same moment');

  const forced = await rootActivate(dir, { now: new Date(t0 + 25 * H), force: true });
  t.match(forced.warning, /^root activate forced: /);
  await t.rejects(rootRetire(dir, { now: new Date(t0 + 50 * H) }), {
    code: 'forbidden',
    message: `root retire refused: leaves signed under the old root can be valid until ${new Date(notAfter).toISOString()} (activated at ${new Date(t0 + 25 * H).toISOString()}, leaf lifetime 1d; a longer leaf signed before, offline or under a larger maxTtl, until then), and peers would stop trusting them; wait `,
  });
  const retired = await rootRetire(dir, { now: new Date(notAfter + 1000) });
  t.equal(retired.warning, undefined, 'allowed once the offline leaf has expired');
});

async function signLeaf(url: string, dir: string, ttl: string): Promise<string> {
  const keys = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), 'spiffe://mesh.local/svc/orders');
  const token = await caToken(dir, 'orders', H, false);
  const res = await callCa(url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr, ttl }), headers: { authorization: `Bearer ${token}` }, ca: await readFile(join(dir, 'bundle.pem'), 'utf8') });
  if (res.status !== 200) throw new Error(`signing failed: ${res.text}`);
  return String(res.json().notAfter);
}

t.test('a CA server restarted with a smaller maxTtl still counts the longer leaves of the one before', async (t) => {
  const long = await startTestCa({ maxTtlMs: 720 * H, defaultTtlMs: 720 * H });
  const dir = long.dir;
  const notAfter = Date.parse(await signLeaf(long.server.url, dir, '720h'));
  t.ok(notAfter > Date.now() + 719 * H, 'a 30-day leaf from the first server');
  await long.server.close();
  const short = await startTestCa({ maxTtlMs: H, defaultTtlMs: H }, dir);
  t.teardown(() => short.close());

  const t0 = Date.now();
  await rootAdd(dir, { now: new Date(t0) });
  const activate = rootActivate(dir, { now: new Date(t0 + 2 * H) });
  await t.rejects(activate, { code: 'forbidden', message: /^root activate refused: .*a leaf issued before the add is valid until (\S+)\); wait until \1 / });
  const allowedFrom = Date.parse(String((await caStatus(dir)).rootRotation.next?.allowedFrom));
  t.ok(allowedFrom >= notAfter, `activate waits for the 30-day leaf: ${new Date(allowedFrom).toISOString()} ≥ ${new Date(notAfter).toISOString()}`);

  await rootActivate(dir, { now: new Date(t0 + 2 * H), force: true });
  await t.rejects(rootRetire(dir, { now: new Date(t0 + 4 * H) }), { code: 'forbidden', message: /^root retire refused: leaves signed under the old root can be valid until \S+ \(activated at \S+, leaf lifetime 1h; a longer leaf signed before/ });
  const retireFrom = Date.parse(String((await caStatus(dir)).rootRotation.next?.allowedFrom));
  t.ok(retireFrom >= notAfter, 'so does retire');
  t.equal((await rootRetire(dir, { now: new Date(retireFrom + 1000) })).warning, undefined, 'allowed once it has expired');
});

// Two servers on one folder at once (an overlapping restart, a second port): the one started
// second recorded its smaller maxTtl, and the rotation steps then counted the first's leaves
// only up to that moment while it went on signing 30-day ones (a review: `root activate`
// allowed before such a leaf expired). Each server now keeps its maxTtl recorded while it signs.
t.test('two CA servers on one folder at once: the longer leaves of the one still signing are counted', async (t) => {
  const long = await startTestCa({ maxTtlMs: 720 * H, defaultTtlMs: 720 * H });
  const dir = long.dir;
  t.teardown(() => long.close());
  const short = await startTestCa({ maxTtlMs: H, defaultTtlMs: H }, dir);
  t.teardown(() => short.server.close());
  const shortStarted = Date.now();
  // a leaf's notAfter is to the second: sign once the clock is a whole second past the second server's start
  while (Date.now() < Math.ceil(shortStarted / 1000) * 1000 + 1000) await new Promise((r) => setTimeout(r, 50));
  const notAfter = Date.parse(await signLeaf(long.server.url, dir, '720h'));
  t.ok(notAfter > Date.now() + 719 * H, 'a 30-day leaf from the first server, signed after the second started');
  t.ok(long.logLines.some((l) => /recorded a smaller maxTtl; recorded this server's again/.test(String(l.msg))), 'the first server says it recorded its maxTtl again');

  const t0 = Date.now();
  await rootAdd(dir, { now: new Date(t0) });
  const allowedFrom = Date.parse(String((await caStatus(dir)).rootRotation.next?.allowedFrom));
  t.ok(allowedFrom >= notAfter, `activate waits for that leaf: ${new Date(allowedFrom).toISOString()} ≥ ${new Date(notAfter).toISOString()}`);
});
