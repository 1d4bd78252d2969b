// `meshcar ca serve` answers signals from its first moment, as `meshcar run` does: a SIGHUP while
// it loads its modules or reads its config ended it (exit 129; once it ran, SIGHUP is ignored
// with a warning), and a SIGTERM then exited 143 with no line. Both are sent before it has read
// its config (the file's access time, set in the past, is untouched when the kernel shows SIGHUP
// caught): it warns about the SIGHUP, logs "stopped", exits 0.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshcar } from '../helpers/process.js';

const WAIT_MS = 10_000;
const LONG_AGO = new Date('2001-01-01T00:00:00Z');

/** Whether the kernel shows SIGHUP caught (a handler installed) by process `pid`. */
async function catchesHangUp(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n; // SIGHUP is signal 1
}

t.test('SIGHUP and SIGTERM before ca serve has read its config: a warning, "stopped", exit 0', async (t) => {
  const dir = t.testdir();
  const init = await new Promise<number>((resolve) => execFile(process.execPath, ['dist/cli.js', 'ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'], (err) => resolve(err ? 1 : 0)));
  t.equal(init, 0);
  const config = join(dir, 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${join(dir, 'ca')}\nlisten: 127.0.0.1:0\n`);
  await utimes(config, LONG_AGO, LONG_AGO); // relatime: the first read sets the access time anew
  const ca = startMeshcar(['ca', 'serve', '--config', config]);
  t.teardown(() => ca.stop('SIGKILL'));
  const pid = ca.child.pid as number;
  const until = Date.now() + WAIT_MS;
  while (!(await catchesHangUp(pid)) && Date.now() < until && ca.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 2));
  t.equal((await stat(config)).atime.getTime(), LONG_AGO.getTime(), 'SIGHUP is caught from before the config is read');
  ca.child.kill('SIGHUP');
  ca.child.kill('SIGTERM');
  t.equal(await ca.exited(), 0, `exit 0 (stderr: ${ca.stderr.join('\n')})`);
  t.equal(ca.child.signalCode, null, 'not ended by a signal');
  t.ok(ca.lines.some((line) => line.level === 40 && /^SIGHUP ignored/.test(String(line.msg))), 'the SIGHUP is told');
  t.ok(ca.lines.some((line) => /^stopped/.test(String(line.msg))), `"stopped": ${JSON.stringify(ca.lines.map((l) => l.msg))}`);
  t.same(ca.stderr, [], 'nothing on stderr');
});
