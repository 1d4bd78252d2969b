// The documentation stands alone and stays complete: every link in README.md and docs/ points
// at a file inside the repository, every command `meshcar --help` lists is in the README's
// command table, every admin endpoint answers and is in the README, and every error code the
// sidecar answers and every TLS failure reason is explained in docs/troubleshooting.md.

import t from 'tap';
import { execFile } from 'node:child_process';
import { access, readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const read = (file: string) => readFile(join(ROOT, file), 'utf8');

async function docs(): Promise<string[]> {
  return ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

t.test('links stay inside the repository and resolve', async (t) => {
  for (const file of await docs()) {
    const text = await read(file);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:|#)/.test(target as string)) continue;
      const path = resolve(ROOT, dirname(file), (target as string).split('#')[0] as string);
      t.notOk(relative(ROOT, path).startsWith('..'), `${file}: ${target} stays inside the repository`);
      await t.resolves(access(path), `${file}: ${target} exists`);
    }
    t.notMatch(text, /\.\.\/shared|DESIGN\.md/, `${file} names no file outside the repository`);
  }
});

/** The anchors GitHub gives a Markdown file's headings: lower-cased, punctuation dropped, spaces to '-', repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} +(.+?) *$/.exec(line);
    if (heading === null) continue;
    const base = (heading[1] as string).toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

t.test('links to a heading name one that exists', async (t) => {
  let checked = 0;
  for (const file of await docs()) {
    for (const [, target] of (await read(file)).matchAll(/\]\(([^)\s]*#[^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target as string)) continue;
      const [path, anchor] = (target as string).split('#') as [string, string];
      const into = path === '' ? file : relative(ROOT, resolve(ROOT, dirname(file), path));
      if (!into.endsWith('.md')) continue;
      t.ok(headingAnchors(await read(into)).has(anchor), `${file}: ${target} names a heading of ${into}`);
      checked++;
    }
  }
  t.ok(checked >= 10, `${checked} links to headings checked`);
});

t.test('every command is in the README', async (t) => {
  const help = await new Promise<string>((done) => execFile(process.execPath, [join(ROOT, 'dist/cli.js'), '--help'], (_err, stdout) => done(stdout)));
  const readme = await read('README.md');
  const commands = [...help.matchAll(/^ {2}(meshcar (?:[a-z-]+ )*?[a-z-]+) --/gm)].map((m) => m[1] as string);
  t.ok(commands.length >= 8, `commands listed by --help: ${commands.join(', ')}`);
  for (const command of commands) t.match(readme, `\`${command} `, `${command} is documented`);
});

t.test('every error the sidecar answers and every TLS failure reason is explained', async (t) => {
  const errors = await read('src/errors.ts');
  const dataPlane = errors.slice(errors.indexOf('// sidecar data plane'), errors.indexOf('// local, non-HTTP failures'));
  const codes = [...dataPlane.matchAll(/'([a-z_]+)'/g), ['', 'forbidden'], ['', 'bad_request'], ['', 'rate_limited']].map((m) => m[1] as string);
  const reasons = [...(await read('src/metrics/traffic.ts')).matchAll(/export type TlsFailureReason = ([^;]+);/g)].flatMap((m) => [...(m[1] as string).matchAll(/'([a-z_]+)'/g)].map((r) => r[1] as string));
  const guide = await read('docs/troubleshooting.md');
  t.ok(codes.length >= 9 && reasons.length >= 8, `codes: ${codes.join(', ')}; reasons: ${reasons.join(', ')}`);
  for (const code of codes) t.match(guide, new RegExp(`\\| \`${code}\` \\|`), `error ${code} has its row`);
  for (const reason of reasons) t.match(guide, new RegExp(`\\| \`${reason}\` \\|`), `TLS reason ${reason} has its row`);
});

t.test('every admin endpoint is in the README', async (t) => {
  const server = await read('src/admin/server.ts');
  // the views a sidecar adds to the admin server's own paths
  const sidecar = await read('src/sidecar-admin.ts');
  const paths = [...server.matchAll(/case '(\/[a-z/]+)':/g), ...sidecar.matchAll(/'(\/[a-z/]+)': (?:async )?\((?:\w+(?:: \w+)?)?\) =>/g), ['', '/reload']].map((m) => m[1] as string);
  const readme = await read('README.md');
  const section = readme.slice(readme.indexOf('### Admin endpoints'), readme.indexOf('\n### ', readme.indexOf('### Admin endpoints') + 5));
  t.ok(paths.length >= 8, `endpoints: ${paths.join(', ')}`);
  for (const path of paths) t.match(section, `\`${path.startsWith('/reload') ? 'POST /reload' : path}`, `${path} is documented`);
});
