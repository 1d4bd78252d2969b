// An SVID that cannot be saved (a read-only or full identity.dir) is no longer silent: each
// failed save counts in meshcar_identity_persist_failures_total, and the save is tried again
// with backoff, so it lands once the disk takes writes again, not at the next renewal (hours
// later), and a restart then needs no join token. The disk is made unwritable for real
// (helpers/unwritable-dir.ts: a tmpfs remounted read-only, for root too).

import t from 'tap';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { execFileAsync, memoryLogger } from '../helpers/ca.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { startMeshCa, launchSidecar, metricValue, type MeshCa } from '../helpers/mesh.js';
import { startMeshcar } from '../helpers/process.js';
import { unwritableDir } from '../helpers/unwritable-dir.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import type { Svid } from '../../src/identity/svid.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const ORDERS = 'spiffe://mesh.local/svc/orders';
const FAILURES = 'meshcar_identity_persist_failures_total';

let ca: MeshCa;
t.before(async () => {
  ca = await startMeshCa(t.testdir(), { maxTtl: '1h' });
});
t.teardown(() => ca?.stop());
// the two cases side by side: each mostly waits for save retries and renewals
t.jobs = 2;

async function singleUseToken(name: string, singleUse = true): Promise<string> {
  const file = join(ca.dir, `${name}.token`);
  await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', ca.caDir, '--service', 'orders', ...(singleUse ? ['--single-use'] : []), '--out', file]);
  return file;
}

const storedSerial = (dir: string) =>
  readFile(join(dir, 'svid.crt')).then(
    (pem) => new X509Certificate(pem).serialNumber.toLowerCase(),
    () => undefined,
  );

const until = async (condition: () => Promise<boolean>, what: string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

t.test('first start on a read-only identity.dir with a reusable token: serves, counts the failure, saves once it can; the restart needs no token', async (t) => {
  const disk = await unwritableDir(t);
  t.comment(`unwritable by: ${disk.how}`);
  await disk.block();
  const sidecar = await (await launchSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' }, token: await singleUseToken('orders-ro', false), identityDir: disk.path })).ready();
  t.teardown(() => sidecar.stop('SIGKILL'));
  const serving = String((JSON.parse((await sidecar.admin('/identity')).body) as { serial?: string }).serial);
  t.ok(sidecar.process.lines.some((l) => l.level === 50 && /could not save the SVID in .*; trying again in 1s/.test(String(l.msg))), 'one error line says it');
  const metrics = (await sidecar.admin('/metrics')).body;
  t.ok((metricValue(metrics, FAILURES) ?? 0) >= 1, `${FAILURES} counts it`);
  const lint = await promtoolCheck(metrics);
  t.equal(lint.code, 0, lint.output);
  t.equal(await storedSerial(disk.path), undefined, 'nothing on disk yet');

  await disk.unblock();
  await until(async () => (await storedSerial(disk.path)) === serving, 'the SVID saved by a retry', 8000);
  t.pass('saved by a retry, with no renewal (1 h lifetime)');
  // the line may reach us a moment after the file is there (the child's stdout is a pipe)
  await until(async () => sidecar.process.lines.some((l) => /saved the SVID in .* after \d+ failed attempts?/.test(String(l.msg))), 'the recovery log line', 5000);
  t.pass('the recovery is logged');
  t.ok((metricValue((await sidecar.admin('/metrics')).body, FAILURES) ?? 0) >= 1, 'the count stays (a counter)');

  // the saved SVID is what a restart runs on
  await sidecar.stop('SIGKILL');
  const again = startMeshcar(['run', '--config', sidecar.configFile]);
  t.teardown(() => again.stop('SIGKILL'));
  const line = await again.waitFor((l) => l.msg === 'sidecar ready' || Number(l.level) >= 50);
  t.equal(line.msg, 'sidecar ready', String(line.msg));
  t.ok(again.lines.some((l) => l.msg === 'reusing the SVID stored on disk' && l.serial === serving), 'the same SVID, from disk');
});

// a single-use token spent on an SVID that could not be stored was lost: an identity.dir that
// stayed unwritable (a file, a folder the user may not write) failed every save, and once mended
// the next start was refused token_used (a review). It is not sent then: the start ends in one
// line, and the same token starts the sidecar once the folder takes writes.
t.test('first start on a read-only identity.dir with a single-use token: refused in one line, the token kept for the next start', async (t) => {
  const disk = await unwritableDir(t);
  await disk.block();
  const token = await singleUseToken('orders-ro-single');
  const first = await launchSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' }, token, identityDir: disk.path });
  t.teardown(() => first.stop('SIGKILL'));
  // bounded: without the check the sidecar serves on (and spends the token)
  const code = await Promise.race([first.process?.exited(), new Promise((resolve) => setTimeout(resolve, 20_000, 'still running after 20 s').unref())]);
  t.equal(code, 1, 'the start ends, exit 1');
  const errors = (first.process?.lines ?? []).filter((l) => Number(l.level) >= 50).map((l) => String(l.msg));
  t.match(errors.join('\n'), /identity\.dir: \S+ cannot hold the SVID: .*(read-only file system|a part of the path is a file).*; the single-use join token was not sent, so it is not spent$/, `said in words (${errors.join(' | ')})`);
  t.notMatch(errors.join('\n'), /EROFS|EACCES/, "without Node's error codes");
  t.equal(await storedSerial(disk.path), undefined, 'nothing stored');

  await disk.unblock();
  const again = startMeshcar(['run', '--config', first.configFile]);
  t.teardown(() => again.stop('SIGKILL'));
  const line = await again.waitFor((l) => l.msg === 'sidecar ready' || Number(l.level) >= 50);
  t.equal(line.msg, 'sidecar ready', `the same single-use token starts it now: ${String(line.msg)}`);
  t.ok((await storedSerial(disk.path)) !== undefined, 'and its SVID is stored');
});

t.test('a renewal whose save fails is saved by a retry once the disk takes writes, before the next renewal', async (t) => {
  const disk = await unwritableDir(t);
  const lines: Array<Record<string, unknown>> = [];
  let failures = 0;
  const running = await obtainIdentity({
    spiffeId: ORDERS,
    trustDomain: 'mesh.local',
    dir: disk.path,
    ca: { url: ca.url, bundlePath: ca.bundlePath, tokenPath: await singleUseToken('orders-renewal') },
    // 9 s (backdated 0.9 s), renewed at half its life: ~4 s after each issue, so the retry
    // a second after the disk is back comes well before the next renewal
    ttlMs: 9_000,
    renewal: { from: 0.5, to: 0.5 },
    onPersistFailure: () => (failures += 1),
    logger: memoryLogger(lines),
  });
  t.teardown(() => running.stop());
  const first = running.identity.current();
  t.equal(await storedSerial(disk.path), first.serialHex, 'the first SVID saved');
  t.equal(failures, 0);

  await disk.block();
  const [renewed] = (await once(running.identity, 'rotated')) as [Svid];
  await until(async () => failures >= 1, 'the failed save reported', 3000);
  t.equal(await storedSerial(disk.path).then((s) => s !== renewed.serialHex), true, 'not saved while read-only');

  const next = once(running.identity, 'rotated');
  await disk.unblock();
  await until(async () => (await storedSerial(disk.path)) === renewed.serialHex, 'the renewed SVID saved by a retry', 5000);
  t.equal(running.identity.current().serialHex, renewed.serialHex, 'before the next renewal');
  t.ok(lines.some((l) => l.level === 50 && /could not save the SVID/.test(String(l.msg))), 'said at error');
  await next; // the next renewal saves normally
  await until(async () => (await storedSerial(disk.path)) === running.identity.current().serialHex, 'the next renewal saved', 3000);
  t.pass('later renewals save as usual');
});
