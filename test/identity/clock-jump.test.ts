// The host's wall clock moving ahead under a running sidecar: a VM or laptop suspended and
// resumed, a clock stepped by NTP. Timers count the process's running time, certificates the
// wall clock's: a renewal timer set for 30 min fired 30 min of running later, whatever the wall
// clock said, so after a long suspend the SVID expired by the wall clock (peers refused it) while
// the renewal still waited. The renewal looks at the wall clock at least every clockCheckMs and
// runs once it is due, with one warning naming the jump. The test moves this process's JS clock
// (Date, helpers/movable-clock.ts), as clock-ahead.cjs does for a child: the in-process CA's
// view moves with it, as a whole host's does after a resume.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { Renewal } from '../../src/identity/renewal.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';
import { lookOftenAtTheClock, movableClock, waitFor } from '../helpers/movable-clock.js';
import { untilServable } from '../../src/identity/valid-soon.js';
import type { Svid } from '../../src/identity/svid.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;
const HOUR = 3_600_000;

t.test('the wall clock jumping past the renewal time: renewed at the next look, not a timer length later', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 2 * HOUR });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const client = new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem, logger });
  const first = await client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, true) }, ttlMs: HOUR });
  const identity = new WorkloadIdentity(first, logger);
  const events: RenewalEvent[] = [];
  identity.on('renewal', (event) => events.push(event));
  // renewal due at half the hour; the wall clock is looked at every 100 ms
  const renewal = new Renewal({ identity, obtain: (current) => client.sign({ spiffeId: ORDERS, auth: { svid: current }, ttlMs: HOUR }), logger, window: { from: 0.5, to: 0.5 }, clockCheckMs: 100 });
  renewal.start();
  t.teardown(() => renewal.stop());
  const due = renewal.nextRenewalAt?.getTime() ?? 0;
  t.ok(due - Date.now() > 20 * 60_000, 'the renewal is due in about half an hour');

  const clock = movableClock();
  t.teardown(clock.restore);
  // 45 min pass by the wall clock in a moment: 15 min before the SVID expires
  clock.offset.ms = 45 * 60_000;
  const deadline = performance.now() + 10_000;
  while (events.length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(events.map((e) => e.result), ['success'], 'renewed within seconds of the jump');
  t.not(identity.current().serialHex, first.serialHex, 'the new SVID serves');
  t.ok(identity.current().notAfter.getTime() - Date.now() > 50 * 60_000, 'with most of an hour left by the moved clock');
  const warned = lines.filter((l) => l.level === 40 && /wall clock moved ahead by \d+ s/.test(String(l.msg)));
  t.equal(warned.length, 1, 'one warning names the jump');
  t.match(String(warned[0]?.msg), /suspend.*the renewal due meanwhile runs now/, 'and what it means');
});

t.test('a first SVID that starts later (the CA clock ahead) is served once the wall clock reaches its start, jump or not', async (t) => {
  t.teardown(lookOftenAtTheClock(100));
  // what bootstrap waits on before serving an SVID from a CA whose clock is 20 min ahead
  const svid = { validFrom: new Date(Date.now() + 20 * 60_000) } as Svid;
  let served = false;
  void untilServable(svid).then(() => (served = true));
  t.notOk(await waitFor(() => served, 500), 'not before its start');
  const clock = movableClock();
  t.teardown(clock.restore);
  clock.offset.ms = 21 * 60_000;
  t.ok(await waitFor(() => served, 5000), 'served within seconds of the clock reaching its start');
});
