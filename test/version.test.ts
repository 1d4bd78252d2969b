// The version meshcar reports (CLI, meshcar_build_info) is the one in package.json: read from
// it at run time, so a package.json with another version makes meshcar report that one.

import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

function run(cli: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
  });
}

t.test('meshcar --version and --help say the version in package.json', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.match(pkg.version, /^\d+\.\d+\.\d+/);
  t.equal(await run(join(ROOT, 'dist/cli.js'), ['--version']), `${pkg.version}\n`);
  const help = await run(join(ROOT, 'dist/cli.js'), ['--help']);
  t.match(help, `meshcar ${pkg.version}:`, '--help names the version');
  t.match(help, '"meshcar --version"', '--help says how to print it');
});

t.test('a build next to a package.json with another version reports that version', async (t) => {
  // the same dist/ files, beside a package.json whose version no source file contains
  const dir = t.testdir();
  await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const other = '97.3.1-versiontest';
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'meshcar', version: other, type: 'module' }));
  const { VERSION } = (await import(join(dir, 'dist/version.js'))) as { VERSION: string };
  t.equal(VERSION, other, 'VERSION is read from package.json');
  t.equal(await run(join(dir, 'dist/cli.js'), ['--version']), `${other}\n`, 'meshcar --version');
  const { Metrics } = (await import(join(dir, 'dist/metrics/registry.js'))) as { Metrics: new (o: { processMetrics: boolean }) => { render(): Promise<string> } };
  const text = await new Metrics({ processMetrics: false }).render();
  t.match(text, /^# TYPE meshcar_build_info gauge$/m, 'the meshcar_build_info family');
  t.match(text, new RegExp(`^meshcar_build_info\\{version="${other.replace(/\./g, '\\.')}"\\} 1$`, 'm'), 'carries that version');
});
