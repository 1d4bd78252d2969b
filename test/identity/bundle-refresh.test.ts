// The workload's trust bundle follows the CA's between renewals, against the real CA server:
// GET /v1/bundle polled every identity.ca.bundleRefresh brings a root added by `root add` with
// no renewal (hour-long certificates here), swapped in and stored; a restart fetches the bundle
// before it hands out the identity (a sidecar that was down learns the new roots before it
// checks a peer); a stored leaf whose root was retired is replaced using the join token; and
// with identity.files a bundle file that gains a root is picked up like any other change.

import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCaDir, startTestCa } from '../helpers/ca.js';
import { caIssue, caToken } from '../../src/ca/commands.js';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';
import { identityFromFiles, obtainIdentity } from '../../src/identity/bootstrap.js';
import { STORE_FILES } from '../../src/identity/disk-store.js';
import { rootCount, type Svid } from '../../src/identity/svid.js';
import { splitPemCertificates } from '../../src/pki/der.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const logger = pino({ level: 'silent' });

t.test('bundle refresh: polled, swapped in without a renewal, stored, fetched again at start', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  const work = await mkdtemp(join(tmpdir(), 'meshcar-bundle-'));
  t.teardown(async () => {
    await ca.close();
    await rm(work, { recursive: true, force: true });
  });
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${await caToken(ca.dir, 'orders', 600_000, false)}\n`, { mode: 0o600 });
  // the bundle the sidecar was installed with: the first root only, never updated
  const installed = join(work, 'installed-bundle.pem');
  await writeFile(installed, await readFile(join(ca.dir, 'bundle.pem')));
  const options = {
    spiffeId: ORDERS,
    trustDomain: 'mesh.local',
    dir: join(work, 'identity'),
    ca: { url: ca.server.url, bundlePath: installed, tokenPath, bundleRefreshMs: 300 },
    ttlMs: 3_600_000,
    logger,
  };

  const running = await obtainIdentity(options);
  const first = running.identity.current();
  t.equal(rootCount(first), 1);
  await rootAdd(ca.dir);
  const [updated] = (await once(running.identity, 'rotated')) as [Svid];
  t.equal(rootCount(updated), 2, 'the poll brought the pending root');
  t.equal(updated.serialHex, first.serialHex, 'same certificate: no renewal was needed');
  t.equal(updated.bundlePem, await readFile(join(ca.dir, 'bundle.pem'), 'utf8'));
  // stored right after the swap
  const storedRoots = () => readFile(join(options.dir, STORE_FILES.bundle), 'utf8').then((pem) => splitPemCertificates(pem).length, () => 0);
  for (let i = 0; i < 100 && (await storedRoots()) !== 2; i++) await sleep(20);
  t.equal(await storedRoots(), 2, 'and stored');
  running.stop();

  // a sidecar that was down: its stored bundle is one root behind when it comes back
  await writeFile(join(options.dir, STORE_FILES.bundle), await readFile(installed));
  await rootActivate(ca.dir, { force: true });
  const back = await obtainIdentity({ ...options, ca: { ...options.ca, bundleRefreshMs: 3_600_000 } });
  t.equal(rootCount(back.identity.current()), 2, 'the restarted identity starts with both roots (fetched before it was handed out)');
  t.equal(back.identity.current().serialHex, first.serialHex, 'the stored certificate is still reused');
  back.stop();

  // the old root retired while it was away: the stored leaf is not trusted any more
  await rootRetire(ca.dir, { force: true });
  // tokens from before activation went with the old root: the operator hands out a new one
  await writeFile(tokenPath, `${await caToken(ca.dir, 'orders', 600_000, false)}\n`, { mode: 0o600 });
  const rejoined = await obtainIdentity(options);
  const svid = rejoined.identity.current();
  t.not(svid.serialHex, first.serialHex, 'a new certificate, by the join token');
  t.equal(svid.bundlePem, await readFile(join(ca.dir, 'bundle.pem'), 'utf8'), 'under the new root alone');
  rejoined.stop();
});

t.test('identity.files: a bundle file that gains a root is picked up (same certificate, two roots)', async (t) => {
  const caDir = await makeCaDir();
  const work = await mkdtemp(join(tmpdir(), 'meshcar-files-bundle-'));
  t.teardown(() => Promise.all([rm(join(caDir, '..'), { recursive: true, force: true }), rm(work, { recursive: true, force: true })]));
  await caIssue(caDir, 'orders', work, 3_600_000);
  const files = { cert: join(work, 'svid.crt'), key: join(work, 'svid.key'), bundle: join(work, 'bundle.pem') };
  const running = await identityFromFiles({ spiffeId: ORDERS, files, logger, debounceMs: 50 });
  t.teardown(() => running.stop());
  t.equal(rootCount(running.identity.current()), 1);
  await rootAdd(caDir);
  const rotated = once(running.identity, 'rotated');
  await writeFile(files.bundle, await readFile(join(caDir, 'bundle.pem')));
  const [svid] = (await rotated) as [Svid];
  t.equal(rootCount(svid), 2, 'the new bundle is swapped in');
});
