// What a start says about the stored SVID it passes over, said once: bootstrap looks at the
// store twice when no set is usable as stored (a second time for one near its end, to renew it
// over mTLS), and the second look is quiet. A folder others can write gave its warning twice.

import t from 'tap';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

t.test('a folder others can write: one warning, then a new SVID', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  const work = await mkdtemp(join(tmpdir(), 'meshcar-boot-warn-'));
  t.teardown(async () => {
    await ca.close();
    await rm(work, { recursive: true, force: true });
  });
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${await caToken(ca.dir, 'orders', 600_000, false)}\n`, { mode: 0o600 });
  const lines: Array<Record<string, unknown>> = [];
  const options = { spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, ttlMs: 600_000, logger: memoryLogger(lines) };

  const first = await obtainIdentity(options);
  const stored = first.identity.current();
  first.stop();
  await chmod(options.dir, 0o770);
  lines.length = 0;

  const second = await obtainIdentity(options);
  t.teardown(() => second.stop());
  t.not(second.identity.current().serialHex, stored.serialHex, 'the stored set is passed over: a new SVID');
  const warnings = lines.filter((l) => String(l.msg).startsWith('not using a stored SVID'));
  t.equal(warnings.length, 1, 'the folder warning is logged once');
  t.match(String(warnings[0]?.msg), /writable by its group .*remove what is in it/, 'and says why and what to do');
  t.ok(lines.some((l) => l.msg === 'SVID issued by the CA'), 'then the new SVID is issued');
});
