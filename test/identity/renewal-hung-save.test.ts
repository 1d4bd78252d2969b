// A renewed SVID whose save never finishes (a hung network filesystem, a stalled disk) is
// swapped in all the same after a bounded wait (Renewal's persistWaitMs, 10 s by default),
// with a warning; before, the swap waited on the save, and the serving certificate ran out
// behind it. The save is a store that never answers; the certificates come from a real PKI.

import t from 'tap';
import { once } from 'node:events';
import { memoryLogger } from '../helpers/ca.js';
import { makePki } from '../helpers/pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { Renewal } from '../../src/identity/renewal.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

t.test('a save that never ends holds the swap for persistWaitMs, not until expiry', async (t) => {
  const pki = await makePki('mesh.local');
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(ORDERS, { lifetimeMs: 60_000 }), ORDERS), logger);
  const first = identity.current().serialHex;
  let saves = 0;
  const renewal = new Renewal({
    identity,
    obtain: async () => validateSvid(await pki.issue(ORDERS, { lifetimeMs: 60_000 }), ORDERS),
    persist: () => {
      saves++;
      return new Promise<void>(() => undefined); // the disk never answers
    },
    persistWaitMs: 300,
    window: { from: 0, to: 0 },
    logger,
  });
  t.teardown(() => renewal.stop());
  const started = Date.now();
  const rotated = once(identity, 'rotated');
  renewal.start();
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no swap within 5 s')), 5000).unref());
  await Promise.race([rotated, timeout]);
  const waited = Date.now() - started;
  t.not(identity.current().serialHex, first, 'the renewed SVID serves');
  t.ok(waited >= 300 && waited < 5000, `swapped after the bounded wait (${waited} ms)`);
  t.equal(saves, 1);
  t.ok(lines.some((l) => l.level === 40 && /saving the renewed SVID takes over 0\.3 s/.test(String(l.msg))), 'a warning says why');
});
