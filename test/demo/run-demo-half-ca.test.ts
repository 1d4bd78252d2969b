// The demo after a first run cut short inside `ca init` (a Ctrl-C reaches the one-shot command
// too; a full disk): its CA folder holds the issuer key and state.json's "initializing" mark,
// and no token key. The demo took the issuer key for a finished CA and went on to `ca token`,
// which refused the unfinished one, so every later `make demo` in that folder failed. It now
// runs `ca init` again (which makes such a CA afresh) and the mesh comes up.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEMO_RUNNER, freeDemoBase } from '../helpers/demo-base.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

t.test('a CA folder left by an interrupted ca init: the demo makes the CA afresh and runs', async (t) => {
  const cwd = t.testdir();
  // what `ca init` leaves when killed after its issuer key: the keys so far, and the mark
  const whole = join(cwd, 'whole-ca');
  const init = spawnSync(process.execPath, [CLI, 'ca', 'init', '--dir', whole, '--trust-domain', 'mesh.local'], { timeout: 20_000 });
  t.equal(init.status, 0, String(init.stderr));
  const half = join(cwd, 'certs', 'ca');
  await mkdir(half, { recursive: true, mode: 0o700 });
  for (const file of ['root.key', 'issuer.key']) await copyFile(join(whole, file), join(half, file));
  await writeFile(join(half, 'state.json'), `${JSON.stringify({ initializing: { since: new Date().toISOString(), trustDomain: 'mesh.local' }, generation: 1 }, null, 2)}\n`);

  const base = await freeDemoBase();
  const child = spawn(process.execPath, [DEMO_RUNNER], { cwd, env: { ...process.env, DEMO_PORT_BASE: String(base), DEMO_SECONDS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, `exit 0; stderr: ${out.stderr.slice(-600)}`);
  t.notMatch(out.stderr, /demo failed/, 'no failure');
  t.match(out.stdout, /stopped every process the demo started/);
  const state = JSON.parse(await readFile(join(half, 'state.json'), 'utf8')) as Record<string, unknown>;
  t.notOk('initializing' in state, 'the CA is finished now');
});
