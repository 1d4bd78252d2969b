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
import { makeCaDir, memoryLogger, startTestCa } from '../helpers/ca.js';
import { caIssue, caToken } from '../../src/ca/commands.js';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';
import { identityFromFiles, obtainIdentity } from '../../src/identity/bootstrap.js';
import { STORE_FILES } from '../../src/identity/disk-store.js';
import { rootCount, type Svid } from '../../src/identity/svid.js';
import { splitPemCertificates } from '../../src/pki/der.js';
import net, { type AddressInfo } from 'node:net';
import { CaClient } from '../../src/identity/ca-client.js';
import { BundleRefresh } from '../../src/identity/bundle-refresh.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';

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
  // the token goes only to a CA the configured bundle vouches for: the new root, read back from
  // the stored bundle, is not enough (a root retired because its key leaked may be stored too)
  await t.rejects(obtainIdentity(options), { code: 'ca_mismatch', message: /does not chain to identity\.ca\.bundle/ }, 'with the installed bundle alone: refused, the token not sent');
  // and the operator gives it the CA's bundle of now, as the README says at each rotation
  await writeFile(installed, await readFile(join(ca.dir, 'bundle.pem')));
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

t.test('a poll answered before a renewal and handled after it does not put the older bundle back', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const direct = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger });
  const svid = await direct.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) } });
  const identity = new WorkloadIdentity(svid, logger);
  // a TCP relay that holds the CA's answer (after the TLS handshake) until released: a slow path
  let release: (() => void) | undefined;
  const held: Buffer[] = [];
  let answered = false;
  const relay = net.createServer((client) => {
    const upstream = net.connect(new URL(ca.server.url).port as unknown as number, '127.0.0.1');
    let fromClient = 0;
    client.on('data', (d: Buffer) => {
      fromClient++;
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      // the handshake's flights pass; what the CA sends once the request is in is held
      if (fromClient < 2 || release === undefined) return client.write(d);
      answered = true;
      held.push(d);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    release = () => {
      for (const d of held.splice(0)) client.write(d);
      release = undefined;
      client.end();
    };
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.teardown(async () => {
    relay.close();
    await ca.close();
  });
  const slow = new CaClient({ url: `https://127.0.0.1:${(relay.address() as AddressInfo).port}`, trustDomain: 'mesh.local', bundlePem, logger });
  const stored: Svid[] = [];
  const refresh = new BundleRefresh({ identity, client: slow, intervalMs: 1e9, persist: async (s) => void stored.push(s), renewNow: () => {}, logger });
  const poll = refresh.refresh();
  while (!answered) await sleep(5); // the CA has answered with today's one-root bundle; it is on its way
  await rootAdd(ca.dir);
  identity.swap(await direct.sign({ spiffeId: ORDERS, auth: { svid: identity.current() } }));
  t.equal(rootCount(identity.current()), 2, 'a renewal brought the added root');
  release?.();
  await poll;
  t.equal(rootCount(identity.current()), 2, 'the older answer, handled after, did not take it away');
  t.same(stored, [], 'nor was anything stored for it');
});

t.test('a poll cut by the sidecar stopping is not logged as the CA failing', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const direct = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger });
  const identity = new WorkloadIdentity(await direct.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) } }), logger);
  // a CA address that accepts and never answers: the poll is in flight when the stop comes
  const accepted: net.Socket[] = [];
  const silent = net.createServer((socket) => void accepted.push(socket));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    for (const socket of accepted) socket.destroy();
    silent.close();
  });
  const stopping = new AbortController();
  const lines: Array<Record<string, unknown>> = [];
  const client = new CaClient({ url: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, trustDomain: 'mesh.local', bundlePem, logger, signal: stopping.signal });
  const refresh = new BundleRefresh({ identity, client, intervalMs: 1e9, persist: async () => {}, renewNow: () => {}, logger: memoryLogger(lines) });
  const poll = refresh.refresh();
  while (accepted.length === 0) await sleep(5);
  // the sidecar's stop: the abort first, then the parts stop (src/sidecar.ts)
  stopping.abort(new Error('the sidecar stopped'));
  refresh.stop();
  await poll;
  t.same(lines.filter((line) => /could not fetch/.test(String(line.msg))), [], 'no warning for a poll the stop cut');
});

// a poll failing the same way again and again is said once at warn, then at debug, until the CA
// answers (a poll every second said it every second); and a poll finding the leaf no longer
// covered asks for a renewal, which does not jump a back-off in progress (renewal.ts renewNow)
t.test('a poll failing the same way is warned once, again after the CA has answered', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const direct = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem, logger });
  const identity = new WorkloadIdentity(await direct.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) } }), logger);
  // a door to the CA: open, connections go through; shut, each is closed at once
  let open = false;
  const target = new URL(ca.server.url);
  const door = net.createServer((socket) => {
    if (!open) return void socket.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  door.listen(0, '127.0.0.1');
  await once(door, 'listening');
  t.teardown(() => door.close());
  const lines: Array<Record<string, unknown>> = [];
  const client = new CaClient({ url: `https://127.0.0.1:${(door.address() as AddressInfo).port}`, trustDomain: 'mesh.local', bundlePem, logger });
  const refresh = new BundleRefresh({ identity, client, intervalMs: 1e9, persist: async () => {}, renewNow: () => {}, logger: memoryLogger(lines, 'debug') });
  t.teardown(() => refresh.stop());
  const said = () => lines.filter((line) => /could not fetch/.test(String(line.msg))).map((line) => (line.level === 40 ? 'warn' : line.level === 20 ? 'debug' : String(line.level)));
  for (let i = 0; i < 3; i++) await refresh.refresh();
  t.same(said(), ['warn', 'debug', 'debug'], 'three failed polls: one warning');
  open = true;
  await refresh.refresh();
  open = false;
  await refresh.refresh();
  t.same(said(), ['warn', 'debug', 'debug', 'warn'], 'after an answer, the next failure is warned again');
});

t.test('the longest bundleRefresh (24d) with its +10 % jitter still waits: it is not cut to 1 ms', async (t) => {
  // 24d × 1.1 is past 2^31-1 ms, which Node's timers turn into 1 ms (TimeoutOverflowWarning)
  const warnings: string[] = [];
  const onWarning = (warning: Error) => void warnings.push(warning.name);
  process.on('warning', onWarning);
  const random = Math.random;
  Math.random = () => 0.999;
  let polls = 0;
  const client = { fetchBundle: async () => void polls++ } as unknown as CaClient;
  const identity = { current: () => ({}) } as unknown as WorkloadIdentity;
  const refresh = new BundleRefresh({ identity, client, intervalMs: 24 * 86_400_000, persist: async () => {}, renewNow: () => {}, logger });
  t.teardown(() => {
    refresh.stop();
    Math.random = random;
    process.off('warning', onWarning);
  });
  refresh.start();
  Math.random = random;
  // a wait cut to 1 ms has polled (and warned) well within this
  const until = Date.now() + 200;
  while (polls === 0 && Date.now() < until) await sleep(10);
  t.equal(polls, 0, 'no poll');
  t.same(warnings.filter((name) => name === 'TimeoutOverflowWarning'), [], 'no timer overflow');
});
