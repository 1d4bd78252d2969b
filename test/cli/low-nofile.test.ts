// A sidecar started under an open-files limit too low for it (a container's nofile of a few
// dozen) says so in one line and exits 1: it printed Node's stack trace, from loading its own
// modules, and at some limits `meshcar: unexpected failure` with exit 70, which reads as a bug.
// Limits from 20 to 56 (with `ulimit -n` in a shell, as a container runtime sets it): each run
// either says what ran short and what to raise, or gets as far as the config (named missing).

import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

function runUnder(limit: number, config: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$1" run --config "$2"`, process.execPath, CLI, config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

t.test('too few descriptors: one line naming the limit, exit 1, never a stack trace', async (t) => {
  const config = join(t.testdir(), 'absent.yaml');
  let named = 0;
  for (let limit = 20; limit <= 56; limit += 4) {
    const { status, stderr } = await runUnder(limit, config);
    const lines = stderr.trimEnd().split('\n');
    t.equal(status, 1, `nofile ${limit}: exit 1 (${stderr.slice(0, 160)})`);
    t.equal(lines.length, 1, `nofile ${limit}: one line`);
    t.notMatch(stderr, /unexpected failure|^\s+at |node:internal|node:fs/m, `nofile ${limit}: no stack trace`);
    if (/ulimit -n/.test(stderr)) {
      named++;
      t.match(lines[0], /^meshcar: (this process has )?no file descriptor left.*\(EMFILE\)/, `nofile ${limit}: what ran short`);
    } else t.match(lines[0], /absent\.yaml: cannot read the config file: no such file/, `nofile ${limit}: otherwise the missing config is what it says`);
  }
  t.ok(named > 0, `${named} of the limits were named as too low`);
});
