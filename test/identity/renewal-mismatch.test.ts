// A renewal that meets a server which chains to the bundle but is not this trust domain's CA
// (ca_mismatch): a config mistake, not an outage. It is logged once at error level with its
// fix; the retries that follow are quiet (debug), and the current SVID keeps serving. Once the
// SVID has expired, that is said once more at error.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { impostor, memoryLogger, startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { Renewal } from '../../src/identity/renewal.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

/**
 * A renewal of an SVID of `ttlMs` from the real CA, started at once against a server that chains
 * to the bundle but is not the CA; its log lines (debug and up) and its renewal events.
 */
async function renewingAgainstImpostor(t: Tap.Test, ttlMs: number, backoff: { baseMs: number; capMs: number }) {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const first = await new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem, logger: memoryLogger([]) }).sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, true) }, ttlMs });
  const fake = await impostor(ca.dir, `spiffe://${TD}/svc/evil`);
  t.teardown(() => fake.server.close());
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines, 'debug');
  const identity = new WorkloadIdentity(first, logger);
  const fooled = new CaClient({ url: fake.url, trustDomain: TD, bundlePem, logger });
  const failures: RenewalEvent[] = [];
  identity.on('renewal', (event) => failures.push(event));
  const renewal = new Renewal({ identity, obtain: (current) => fooled.sign({ spiffeId: ORDERS, auth: { svid: current } }), logger, window: { from: 0, to: 0 }, backoff });
  renewal.start();
  t.teardown(() => renewal.stop());
  return { first, identity, lines, failures };
}

t.test('renewal against a server that is not the CA: one error line, quiet retries, SVID kept', async (t) => {
  const { first, identity, lines, failures } = await renewingAgainstImpostor(t, 600_000, { baseMs: 10, capMs: 20 });
  const until = Date.now() + 10_000;
  while (failures.length < 4 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  t.ok(failures.length >= 4 && failures.every((f) => f.result === 'failure'), `${failures.length} renewals failed`);

  const about = lines.filter((l) => /SVID renewal failed/.test(String(l.msg)));
  const errors = about.filter((l) => l.level === 50);
  t.equal(errors.length, 1, 'said once at error level');
  t.match(String(errors[0]?.msg), /not the meshcar CA of trust domain "mesh\.local".*will not mend itself/, 'with what is wrong and the fix');
  t.equal(about.filter((l) => l.level === 40).length, 0, 'no warn line per retry');
  t.ok(about.filter((l) => l.level === 20).length >= 3, 'the retries log at debug');
  t.equal(identity.current().serialHex, first.serialHex, 'the current SVID keeps serving');
});

t.test('the SVID expiring while renewals meet that server: said again, at error, as expired', async (t) => {
  const { first, lines } = await renewingAgainstImpostor(t, 2_500, { baseMs: 50, capMs: 100 });
  const errors = () => lines.filter((l) => l.level === 50 && /SVID renewal failed/.test(String(l.msg))).map((l) => String(l.msg));
  const until = Date.now() + 10_000;
  while (errors().length < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(errors().length, 2, 'two error lines: one while valid, one once expired');
  t.match(errors()[0], /still serving the current SVID until /, 'the first: still serving');
  t.match(errors()[1], new RegExp(`the current SVID expired at ${first.notAfter.toISOString().replace(/\./g, '\\.')}`), 'the second: expired, and when');
  t.notMatch(errors()[1], /still serving/, 'not "still serving" past the end');
  // three more retries, then none of them said anything at error level
  const after = lines.length;
  const retriesSince = () => lines.slice(after).filter((l) => l.level === 20 && /failed again/.test(String(l.msg))).length;
  while (retriesSince() < 3 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(retriesSince() >= 3, 'the retries go on');
  t.equal(lines.slice(after).filter((l) => l.level === 50).length, 0, 'quietly (debug)');
});
