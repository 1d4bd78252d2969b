// `meshcar run` answers signals from its first moment. A SIGTERM while it waits for a CA that
// is not up yet stops what started: exit 0 with "stopped" logged, at once (not when the first
// issuance gives up 30 s later), and no listener after (it exited 143 without a word). A SIGHUP
// before it has read its config does not end it (the default action did: exit 129): the
// handler is on before the config file is read (its access time, set in the past, is still
// untouched when the kernel shows SIGHUP caught), and before the command's modules have loaded
// (a SIGHUP sent while they load, by a module-loading hook, is kept: the sidecar reloads once it
// can; it ended the process when the listener came with those modules). A real process; the CA
// address refuses every connection, so start-up waits for it.

import t from 'tap';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from './helpers/pki.js';
import { unsignedToken } from './helpers/ca.js';
import { fileURLToPath } from 'node:url';
import { freePort, startMeshcar, type MeshcarProcess } from './helpers/process.js';

const HANG_UP_ON_LOAD = fileURLToPath(new URL('./helpers/hangup-on-load.mjs', import.meta.url));

const WAIT_MS = 10_000;
const LONG_AGO = new Date('2001-01-01T00:00:00Z');

/** A sidecar config whose CA address refuses every connection. */
async function configWaitingForCa(t: Tap.Test): Promise<string> {
  const dir = t.testdir();
  const pki = await makePki('mesh.local');
  await writeFile(join(dir, 'bundle.pem'), pki.bundlePem);
  await writeFile(join(dir, 'orders.token'), `${unsignedToken()}\n`, { mode: 0o600 }); // a token the CA never sees
  const file = join(dir, 'orders.yaml');
  const lines = [
    'service: orders',
    'trustDomain: mesh.local',
    'identity:',
    '  ca:',
    `    url: https://127.0.0.1:${await freePort()}`,
    `    bundle: ${join(dir, 'bundle.pem')}`,
    `    token: ${join(dir, 'orders.token')}`,
    `  dir: ${join(dir, 'id')}`,
    'outbound:',
    '  listen: 127.0.0.1:0',
    '  upstreams:',
    '    payments: {endpoints: [127.0.0.1:9], identity: spiffe://mesh.local/svc/payments}',
    'admin:',
    '  listen: 127.0.0.1:0',
    'log: {level: info}',
    'drainTimeout: 2s',
  ];
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

const waitingForCa = (proc: MeshcarProcess) => proc.waitFor((line) => String(line.msg).startsWith('first SVID request failed, retrying'), WAIT_MS);

async function exitWithin(proc: MeshcarProcess, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  const code = await Promise.race([proc.exited(), late]);
  clearTimeout(timer);
  return code;
}

/** Whether the kernel shows SIGHUP caught (a handler installed) by process `pid`. */
async function catchesHangUp(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n; // SIGHUP is signal 1
}

t.test('SIGTERM while start-up waits for the CA: stopped, exit 0, at once, nothing listening after', async (t) => {
  const proc = startMeshcar(['run', '--config', await configWaitingForCa(t)]);
  t.teardown(() => proc.stop('SIGKILL'));
  await waitingForCa(proc);
  const since = Date.now();
  proc.child.kill('SIGTERM');
  t.equal(await exitWithin(proc, WAIT_MS), 0, 'exit 0');
  t.ok(Date.now() - since < 5_000, `within ${Date.now() - since} ms: the wait for the CA ended (it retries for 30 s)`);
  const messages = proc.lines.map((line) => String(line.msg));
  t.ok(messages.includes('stopped'), 'the usual "stopped" line');
  t.notOk(
    messages.some((m) => /^(outbound|inbound) listening|^sidecar ready/.test(m)),
    `no listener came up: ${JSON.stringify(messages)}`,
  );
  t.same(proc.stderr, [], 'nothing on stderr');
});

t.test('SIGHUP before the config is read does not end the process; SIGTERM then stops it', async (t) => {
  const config = await configWaitingForCa(t);
  await utimes(config, LONG_AGO, LONG_AGO); // relatime: the first read sets the access time anew
  const proc = startMeshcar(['run', '--config', config]);
  t.teardown(() => proc.stop('SIGKILL'));
  const pid = proc.child.pid as number;
  const until = Date.now() + WAIT_MS;
  while (!(await catchesHangUp(pid)) && Date.now() < until && proc.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 2));
  t.ok(await catchesHangUp(pid), 'the process catches SIGHUP');
  t.equal((await stat(config)).atime.getTime(), LONG_AGO.getTime(), 'from before it reads its config');
  proc.child.kill('SIGHUP');
  await waitingForCa(proc);
  t.equal(proc.child.exitCode, null, 'still running after the SIGHUP, on to its CA');
  t.equal(proc.child.signalCode, null);
  proc.child.kill('SIGTERM');
  t.equal(await exitWithin(proc, WAIT_MS), 0, 'SIGTERM: exit 0');
  t.ok(proc.lines.some((line) => line.msg === 'stopped'), 'with "stopped"');
});

t.test('SIGHUP while the command\'s modules load does not end the process: it is kept for the reload', async (t) => {
  const proc = startMeshcar(['run', '--config', await configWaitingForCa(t)], { nodeArgs: ['--import', HANG_UP_ON_LOAD] });
  t.teardown(() => proc.stop('SIGKILL'));
  await Promise.race([waitingForCa(proc), proc.exited()]);
  t.equal(proc.child.signalCode, null, 'not ended by the SIGHUP');
  t.equal(proc.child.exitCode, null, 'still running, on to its CA');
  proc.child.kill('SIGTERM');
  t.equal(await exitWithin(proc, WAIT_MS), 0, 'SIGTERM: exit 0');
});
