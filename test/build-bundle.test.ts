// The command a user runs, dist/cli.js, is one bundle of meshcar's own modules (make build:
// tsc, then esbuild), so a start does not load ~300 modules one by one. Checked on dist/ as
// `make build` left it:
// - cli.js imports only its chunks, node: built-ins and packages, never a module per file;
// - every chunk a bundle file names is there (a stale dist/ would fail at the first use of a
//   lazily loaded part: the CA, the node codec, workers);
// - the spec worker a chunk starts (./spec-load-worker.js, next to the chunk) exists as a bundle;
// - the bundle runs: `meshcar --version` prints the package's version (read from ../package.json,
//   the same depth from a chunk as from dist/version.js).
// That sidecars start, load specs, fork workers and serve from this bundle is what every
// whole-mesh test runs.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const DIST = new URL('../dist/', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;

/** The specifiers of a module's static and dynamic imports (esbuild writes double quotes, tsc single). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;"']*?from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)|(?:^|\n)import\s*["']([^"']+)["']/g)) found.push((m[1] ?? m[2] ?? m[3]) as string);
  return found;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

t.test('dist/cli.js is a bundle: it imports chunks, built-ins and packages only', async (t) => {
  const imports = specifiers(await readFile(join(DIST, 'cli.js'), 'utf8'));
  t.ok(imports.length > 0, 'the imports were read');
  const local = imports.filter((s) => s.startsWith('.'));
  t.ok(local.length > 0, 'it has chunks');
  t.same(local.filter((s) => !/^\.\/chunk-[A-Z0-9]+\.js$/.test(s)), [], 'no module per file (./cli/command.js, ./sidecar.js...)');
});

t.test('every chunk a bundle file names exists, and so does the spec worker the chunks start', async (t) => {
  const files = ['cli.js', 'spec-load-worker.js', ...(await readdir(DIST)).filter((f) => /^chunk-.*\.js$/.test(f))];
  const missing: string[] = [];
  let workerAskedFor = false;
  for (const file of files) {
    const source = await readFile(join(DIST, file), 'utf8');
    for (const spec of specifiers(source).filter((s) => s.startsWith('./'))) if (!(await exists(join(DIST, spec)))) missing.push(`${file} -> ${spec}`);
    if (/["']\.\/spec-load-worker\.js["']/.test(source)) workerAskedFor = true;
  }
  t.same(missing, []);
  t.ok(workerAskedFor, 'a chunk starts ./spec-load-worker.js');
  t.ok(await exists(join(DIST, 'spec-load-worker.js')), 'dist/spec-load-worker.js is there');
});

t.test('the bundle runs: meshcar --version', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(DIST, 'cli.js'), '--version']);
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.match(stdout, new RegExp(`\\b${version.replace(/\./g, '\\.')}\\b`));
});

// V8 keeps each module's source for lazy compilation, one byte per character only when every
// character is Latin-1: a single arrow in a comment the bundle keeps stored the 568 KB main chunk
// as 1.1 MB of UTF-16 (idle RSS 62.1 -> 61.0 MB, mean of three starts each, once the eight such
// characters in kept comments were written in ASCII)
t.test('every bundle file is Latin-1, so V8 stores its source one byte per character', async (t) => {
  const files = ['cli.js', 'spec-load-worker.js', ...(await readdir(DIST)).filter((f) => /^chunk-.*\.js$/.test(f))];
  const wide: string[] = [];
  for (const file of files) {
    const source = await readFile(join(DIST, file), 'utf8');
    const at = source.search(/[^\u0000-\u00ff]/u);
    if (at >= 0) wide.push(`${file}:${source.slice(0, at).split('\n').length}: ${JSON.stringify(source.slice(Math.max(0, at - 30), at + 10))} (write it in ASCII in the source comment)`);
  }
  t.ok(files.length > 3, `${files.length} bundle files read`);
  t.same(wide, []);
});
