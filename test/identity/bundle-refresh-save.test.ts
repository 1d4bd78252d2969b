// A bundle poll answered while a renewal is saving its new SVID. The renewal saves before it
// swaps, so the identity still held the older leaf: the poll (a root added meanwhile) swapped in
// that leaf with the new bundle and saved it, after the renewal's save. The renewal then swapped
// its SVID in, but the disk's current set was the older leaf: a restart served it again. The
// poll now changes nothing while a renewal holds a new SVID; that one carries the CA's bundle.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { rootAdd } from '../../src/ca/lifecycle.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { BundleRefresh } from '../../src/identity/bundle-refresh.js';
import { DiskStore } from '../../src/identity/disk-store.js';
import { Renewal } from '../../src/identity/renewal.js';
import { SvidSaver } from '../../src/identity/svid-saver.js';
import { rootCount, type Svid } from '../../src/identity/svid.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const logger = pino({ level: 'silent' });

t.test('a poll handled while a renewal saves its SVID leaves that SVID on disk, not the older leaf rebundled', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const client = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem: await readFile(join(ca.dir, 'bundle.pem'), 'utf8'), logger });
  const first = await client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, false) } });
  const identity = new WorkloadIdentity(first, logger);

  // a real store whose next save stops once its files are synced, until released
  let hold: Promise<void> | undefined;
  let release: () => void = () => {};
  let reached: () => void = () => {};
  const atHold = new Promise<void>((resolve) => (reached = resolve));
  const store = new DiskStore(join(t.testdir(), 'identity'), logger, {
    afterStep: (step) => {
      if (!step.startsWith('synced') || hold === undefined) return undefined;
      reached();
      return hold;
    },
  });
  const saver = new SvidSaver({ store, logger });
  const saves: Array<Promise<boolean>> = [];
  const persist = (svid: Svid) => {
    const saved = saver.save(svid);
    saves.push(saved);
    return saved.then(() => undefined);
  };
  await persist(first);

  const renewal = new Renewal({ identity, obtain: (current) => client.sign({ spiffeId: ORDERS, auth: { svid: current } }), persist, logger, window: { from: 0.5, to: 0.5 } });
  const bundles = new BundleRefresh({ identity, client, intervalMs: 1e9, persist, renewNow: () => renewal.renewNow(), renewalHoldsNewer: () => renewal.holdsNewer, logger });
  t.teardown(() => {
    renewal.stop();
    bundles.stop();
    saver.stop();
  });
  const renewed = once(identity, 'renewal').then(([event]) => event as RenewalEvent);

  // a root is added; the renewal gets an SVID with both roots and stops in the middle of saving it
  await rootAdd(ca.dir);
  hold = new Promise<void>((resolve) => (release = resolve));
  renewal.start();
  renewal.renewNow();
  await atHold;
  t.equal(identity.current().serialHex, first.serialHex, 'the older leaf still serves while the new one is saved');
  // the poll sees the added root too: handled once it is done, or once it has asked for a save
  let polled = false;
  const poll = bundles.refresh().then(() => void (polled = true));
  const deadline = performance.now() + 10_000;
  while (!polled && saves.length < 3 && performance.now() < deadline) await sleep(5);
  hold = undefined;
  release();
  await poll;
  t.equal((await renewed).result, 'success', 'the renewal lands');
  await Promise.all(saves);

  const served = identity.current();
  t.not(served.serialHex, first.serialHex, 'the new SVID serves');
  t.equal(rootCount(served), 2, 'with both roots');
  const stored = await store.load(ORDERS);
  t.equal(stored?.serialHex, served.serialHex, 'and it is the one on disk, for a restart');
  t.equal(saves.length, 2, 'nothing but the first SVID and the renewed one was saved');
});
