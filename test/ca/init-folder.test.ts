// `ca init` never makes a CA in a folder that holds other things: `--dir /tmp`-like (1777, other
// users' files) became 0700 and held the keys among unrelated files, --force or not. Refused in
// one line naming a few of the files, the folder's mode and contents untouched; an empty folder,
// one with only a volume's lost+found, and a CA's own folder (with --force) still work.

import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

t.test('a folder of other files is refused, --force or not; its mode and files stay', async (t) => {
  const dir = t.testdir({ shared: { 'notes.txt': 'x', 'other.key': 'y', issuers: {}, 'z.txt': 'z', 'zz.txt': 'zz' } });
  const shared = join(dir, 'shared');
  await chmod(shared, 0o1777);
  const [plain, forced] = await Promise.all([
    cli(['ca', 'init', '--dir', shared, '--trust-domain', 'mesh.local']),
    cli(['ca', 'init', '--dir', shared, '--trust-domain', 'mesh.local', '--force']),
  ]);
  for (const result of [plain, forced]) {
    t.equal(result.code, 1, result.stderr);
    t.equal(result.stderr, `meshcar: ${shared}: holds other files (issuers, notes.txt, other.key and 2 more) and no CA; a CA gets a folder of its own, which ca init makes private (mode 0700): give a new or empty folder, e.g. "meshcar ca init --dir ${shared}/ca ..."\n`);
  }
  t.equal((await stat(shared)).mode & 0o7777, 0o1777, 'the mode is as it was');
  t.same((await readdir(shared)).sort(), ['issuers', 'notes.txt', 'other.key', 'z.txt', 'zz.txt'], 'no CA file written, issuers/ not removed by --force');
});

t.test('an empty folder, a volume root with lost+found, a CA folder with --force: made', async (t) => {
  const dir = t.testdir({ empty: {}, volume: { 'lost+found': {} } });
  const [empty, volume] = await Promise.all(['empty', 'volume'].map((name) => cli(['ca', 'init', '--dir', join(dir, name), '--trust-domain', 'mesh.local'])));
  t.equal(empty!.code, 0, empty!.stderr);
  t.equal(volume!.code, 0, volume!.stderr);
  await writeFile(join(dir, 'empty', 'notes.txt'), 'a file put beside a CA later');
  await mkdir(join(dir, 'empty', 'backup'));
  const again = await cli(['ca', 'init', '--dir', join(dir, 'empty'), '--trust-domain', 'mesh.local', '--force']);
  t.equal(again.code, 0, `a CA's folder is replaced with --force as before: ${again.stderr}`);
});
