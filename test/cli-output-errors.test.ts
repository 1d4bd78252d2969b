// A command whose stdout refuses its output (a reader that quit, `| head`; a full disk,
// /dev/full) says so in one line on stderr and fails, instead of an uncaught stack trace: a
// join token, a status or a help text that was not delivered is not a success.

import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const CLI = 'dist/cli.js';

/** Runs the command with stdout on /dev/full (ENOSPC) or on a pipe whose reader is gone (EPIPE). */
function run(args: string[], stdout: 'full' | 'closed'): Promise<{ code: number | null; stderr: string }> {
  const full = stdout === 'full' ? openSync('/dev/full', 'w') : undefined;
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', full ?? 'pipe', 'pipe'] });
  if (full !== undefined) closeSync(full);
  // closed before node has even loaded the script: its first write finds no reader
  else child.stdout!.destroy();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

function cli(args: string[]): Promise<number> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], (err) => resolve(err ? 1 : 0)));
}

t.test('output that stdout refuses: one line on stderr, exit 1 (a usage status stays)', async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  await writeFile(join(dir, 'ca.yaml'), `trustDomain: mesh.local\ndir: ${ca}\nlisten: 127.0.0.1:0\n`);
  t.equal(await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local']), 0);
  const cases: Array<[string[], 'full' | 'closed', number, string]> = [
    [['--help'], 'closed', 1, 'EPIPE'],
    [['--help'], 'full', 1, 'ENOSPC'],
    [['ca', 'token', '--dir', ca, '--service', 'orders'], 'closed', 1, 'EPIPE'],
    [['ca', 'token', '--dir', ca, '--service', 'orders'], 'full', 1, 'ENOSPC'],
    [['ca', 'status', '--dir', ca, '--json'], 'full', 1, 'ENOSPC'],
    [['check', '--config', join(dir, 'ca.yaml')], 'closed', 1, 'EPIPE'],
    // no command: the list of commands, and exit 2 as always
    [[], 'full', 2, 'ENOSPC'],
  ];
  const results = await Promise.all(cases.map(([args, stdout]) => run(args, stdout)));
  cases.forEach(([args, stdout, code, errno], i) => {
    const result = results[i]!;
    const name = `${args.slice(0, 2).join(' ') || '(none)'}, stdout ${stdout}`;
    t.equal(result.code, code, `${name}: exit ${code}; ${result.stderr}`);
    t.equal(result.stderr.trim().split('\n').length, 1, `${name}: one line: ${result.stderr}`);
    t.match(result.stderr, new RegExp(`^meshcar: could not write the command's output to stdout \\(${errno}: `), name);
    t.notMatch(result.stderr, /\n\s+at /, `${name}: no stack trace`);
  });
});
