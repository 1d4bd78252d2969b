// A CA whose clock runs behind the sidecar's issues SVIDs whose notBefore lies far in the
// sidecar's past: with the CA 40 s behind and 60 s SVIDs (backdated 6 s), each one arrives with
// 20 s of its 66 s left, past its own renewal time (50-70 % of the lifetime). Renewal at that
// time meant renewal at once, and the next SVID was the same again: a loop (214 renewals in 5 s,
// seen). The real CA process runs with its JS clock behind (helpers/clock-ahead.cjs, a negative
// offset); the sidecar is a real `meshcar run`. It now renews within what is left (never
// sooner than a second after), and says once what is wrong. A CA behind by more than the whole
// lifetime hands out SVIDs expired on arrival: refused, and the refusal says it is the clock.

import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { startSkewedMeshCa, startSidecar, metricValue, type MeshCa } from '../helpers/mesh.js';
import { memoryLogger } from '../helpers/ca.js';
import { CaClient } from '../../src/identity/ca-client.js';

const BEHIND_MS = 40_000;

let ca: MeshCa;
t.before(async () => {
  ca = await startSkewedMeshCa(t.testdir(), -BEHIND_MS);
});
t.teardown(() => ca?.stop());

t.test('SVIDs that arrive past their renewal time are renewed within what is left, not in a loop', async (t) => {
  const sidecar = await startSidecar(ca, { service: 'orders', ttl: '60s', inbound: { app: 'http://127.0.0.1:9' } });
  t.teardown(() => sidecar.stop('SIGKILL'));
  // the first SVID (from the join token) is due at once: one renewal, then a wait
  await sleep(6_000);
  const metrics = (await sidecar.admin('/metrics')).body;
  const renewals = metricValue(metrics, 'meshcar_identity_renewals_total{result="success"}') ?? 0;
  t.ok(renewals >= 1 && renewals <= 2, `${renewals} renewals in the first 6 s`);
  const rotated = sidecar.process.lines.filter((l) => l.msg === 'identity rotated').length;
  t.ok(rotated <= 2, `${rotated} rotations`);

  const identity = JSON.parse((await sidecar.admin('/identity')).body) as { notBefore: string; notAfter: string; nextRenewal: string };
  const next = Date.parse(identity.nextRenewal);
  t.ok(next > Date.now() && next < Date.parse(identity.notAfter), `the next renewal (${identity.nextRenewal}) is ahead and before the end (${identity.notAfter})`);
  t.ok(Date.now() - Date.parse(identity.notBefore) > 30_000, `the SVID did start well in the past (${identity.notBefore}): the case under test`);

  const warnings = sidecar.process.lines.filter((l) => /arrived with \d+ s of its \d+ s left .*the CA's clock is behind this host's; renewing within what is left; set both clocks right \(NTP\)/.test(String(l.msg)));
  t.equal(warnings.length, 1, 'said once, at warn');
  t.equal(warnings[0]?.level, 40);
});

t.test('an SVID expired on arrival (the CA behind by more than its lifetime): the refusal names the clock', async (t) => {
  const client = new CaClient({ url: ca.url, trustDomain: 'mesh.local', bundlePem: await readFile(ca.bundlePath, 'utf8'), logger: memoryLogger([]) });
  const token = (await readFile(await ca.tokenFile('short'), 'utf8')).trim();
  // 20 s from a CA 40 s behind: over 15 s before this host's now
  const refused = await client.sign({ spiffeId: 'spiffe://mesh.local/svc/short', auth: { token }, ttlMs: 20_000 }).then(
    () => undefined,
    (err: unknown) => err as Error & { code?: string },
  );
  t.equal(refused?.code, 'identity_invalid');
  t.match(refused?.message, /^the CA's new SVID is not usable: .* expired at \S+: it arrived expired by this host's clock, so the CA's clock is behind this host's by more than the 2\ds the SVID lasts; set both clocks right \(NTP\)$/, 'it says which clock to set');
});
