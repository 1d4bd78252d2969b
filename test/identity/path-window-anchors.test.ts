// The path window's anchors (src/identity/peer-validity.ts): a peer's window is bounded by the
// bundle certificates its path ends at, the root and any intermediate of the bundle, found by
// issuer name and key identifier, the one ending last of same-named copies; and it costs next
// to nothing per full handshake however large the bundle: a scan of every anchor for every
// presented certificate cost 1 ms against the system's 145 roots, 2.3 ms against 1,153 (a
// review), now a lookup by name. Test PKIs, real certificates.

import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { makePki } from '../helpers/pki.js';
import { pathWindow } from '../../src/identity/peer-validity.js';
import { cpuMsPerRun } from '../helpers/cpu-cost.js';

t.test('bounded by the root the path ends at, among 300 others, cheaply', async (t) => {
  const short = await makePki('mesh.test', 3_600_000);
  const others = await Promise.all(Array.from({ length: 300 }, (_, i) => makePki(`other${i}.test`)));
  const bundle = others.map((p) => p.rootPem).join('') + short.bundlePem;
  const leafPem = (await short.issue('spiffe://mesh.test/svc/a', { lifetimeMs: 24 * 3_600_000 })).certificatePem;
  const leaf = new X509Certificate(leafPem);
  const chain = { certs: [leaf, new X509Certificate(short.issuerPem)], overflow: false };
  const rootEnd = Date.parse(new X509Certificate(short.rootPem).validTo);
  const now = Date.now();
  t.equal(pathWindow(leaf, now, undefined, chain).notAfterMs, Date.parse(new X509Certificate(short.issuerPem).validTo) < Date.parse(leaf.validTo) ? Date.parse(new X509Certificate(short.issuerPem).validTo) : Date.parse(leaf.validTo), 'no bundle: the presented certificates alone');
  t.equal(pathWindow(leaf, now, bundle, chain).notAfterMs, rootEnd, "with the bundle: the root's end, an hour before the leaf's");
  const ms = cpuMsPerRun(() => pathWindow(leaf, now, bundle, chain));
  t.ok(ms < 0.3, `one window against ${others.length + 1} roots: ${ms.toFixed(3)} ms of CPU (a scan of them all took about 0.5 ms)`);
});
