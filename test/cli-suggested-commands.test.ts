// A command a message tells the user to run quotes its paths as a shell reads them: pasted into
// a shell, it runs on that path. A CA folder with a space and a quote in its name ("it's my
// ca") is followed through the root rotation's refusals and `ca status`'s next step, and each
// suggested command is run through /bin/sh as printed; `doctor` names `check` on the config.

import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist/cli.js');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Runs a suggested "meshcar ..." command line through the shell, as a user pasting it would. */
function pasted(command: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const line = command.replace(/^meshcar /, `"${process.execPath}" "${CLI}" `);
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', line], { cwd }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

t.test("a suggested command on a folder named \"it's my ca\" runs as printed", async (t) => {
  const dir = t.testdir();
  const ca = join(dir, "it's my ca");
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const refused = await cli(['ca', 'root', 'retire', '--dir', ca]);
  t.equal(refused.code, 1, refused.stderr);
  const add = /start with "(meshcar ca root add --dir [^\n]*)"\n$/.exec(refused.stderr)?.[1];
  t.ok(add, refused.stderr);
  const added = await pasted(add as string, dir);
  t.equal(added.code, 0, `${add}: ${added.stderr}`);
  t.match(added.stdout, /^added pending root/);
  // ca status's next step, pasted, is refused for its timing, not for its path
  const status = await cli(['ca', 'status', '--dir', ca]);
  const next = /^ {2}next: (meshcar ca root activate --dir .*), allowed from/m.exec(status.stdout)?.[1];
  t.ok(next, status.stdout);
  const activate = await pasted(next as string, dir);
  t.match(activate.stderr, /^meshcar: root activate refused: .*leaf/, `${next}: ${activate.stderr}`);
});

t.test('doctor names check on a config whose path has a space', async (t) => {
  const dir = t.testdir({ 'my sidecar.yaml': 'service: [\n' });
  const result = await cli(['doctor', '--config', join(dir, 'my sidecar.yaml')]);
  t.equal(result.code, 1);
  const check = /fix: (meshcar check --config .*) lists every issue/.exec(result.stdout)?.[1];
  t.ok(check, result.stdout);
  const checked = await pasted(check as string, dir);
  t.equal(checked.code, 1);
  t.match(checked.stderr, /my sidecar\.yaml:\d+:\d+: YAML syntax/, `${check}: ${checked.stderr}`);
});
