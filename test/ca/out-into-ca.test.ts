// `ca token --out` and `ca issue --out` never write into a CA folder: a token written to
// `--out ca/root.key` replaced the root's private key, and `ca issue --out ca` put an SVID
// key beside the CA's and its bundle over the CA's own. Refused in one line before anything
// is signed (a folder inside one too); the CA's files stay as they were, and a path outside
// the folder still works.

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Every file of the folder with its contents, to see that nothing changed. */
async function contents(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) files[name] = await readFile(join(dir, name), 'utf8');
  return files;
}

t.test('--out into a CA folder is refused, its files untouched', async (t) => {
  const dir = t.testdir();
  const [ca, other] = [join(dir, 'ca'), join(dir, 'other-ca')];
  const inits = await Promise.all([ca, other].map((d) => cli(['ca', 'init', '--dir', d, '--trust-domain', 'mesh.local'])));
  inits.forEach((init) => t.equal(init.code, 0, init.stderr));
  const [before, otherBefore] = await Promise.all([contents(ca), contents(other)]);
  const cases: Array<[string[], string]> = [
    [['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(ca, 'root.key')], 'the token'],
    [['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(ca, 'token.key')], 'the token'],
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', ca], 'svid.crt, svid.key and bundle.pem'],
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', `${ca}/`], 'svid.crt, svid.key and bundle.pem'],
    // another CA's folder: its bundle.pem would be this CA's
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', other], 'svid.crt, svid.key and bundle.pem'],
  ];
  for (const [args, what] of cases) {
    const result = await cli(args);
    const out = args[args.length - 1] as string;
    t.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.equal(result.stdout, '', 'nothing printed: no token, no issued line');
    t.equal(result.stderr.split('\n').length, 2, `one line: ${result.stderr}`);
    t.equal(result.stderr, `meshcar: ${out}: ${out.endsWith('.key') ? ca : out} holds a CA (root.key), and --out would write ${what} over or beside its keys; choose a path outside any CA folder\n`);
  }
  // inside a CA folder too: `--out ca/issuers` put the leaf and the root among its earlier issuers
  const inside: Array<[string[], string, string]> = [
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(ca, 'issuers')], join(ca, 'issuers'), 'svid.crt, svid.key and bundle.pem'],
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(ca, 'new', 'deep')], join(ca, 'new', 'deep'), 'svid.crt, svid.key and bundle.pem'],
    [['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(other, 'sub', 'x.token')], join(other, 'sub', 'x.token'), 'the token'],
  ];
  for (const [args, out, what] of inside) {
    const result = await cli(args);
    const holder = out.startsWith(other) ? other : ca;
    t.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.equal(result.stderr, `meshcar: ${out}: it is inside ${holder}, which holds a CA (root.key), and --out would write ${what} among the CA's files; choose a path outside any CA folder\n`);
  }
  // through a link: where the path leads counts, not where the link sits
  const third = join(dir, 'third-ca');
  t.equal((await cli(['ca', 'init', '--dir', third, '--trust-domain', 'mesh.local'])).code, 0);
  await mkdir(join(third, 'sub'));
  await symlink(join(third, 'sub'), join(dir, 'link-to-sub'));
  await symlink(third, join(dir, 'link-to-third'));
  const viaLinks: Array<[string[], string]> = [
    [['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(dir, 'link-to-sub')], join(dir, 'link-to-sub')],
    [['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(dir, 'link-to-third', 'sub', 'x.token')], join(dir, 'link-to-third', 'sub', 'x.token')],
  ];
  for (const [args, out] of viaLinks) {
    const result = await cli(args);
    t.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.match(result.stderr, `meshcar: ${out}: it is inside ${third}, which holds a CA (root.key)`, 'refused through the link');
  }
  t.same(await readdir(join(third, 'sub')), [], 'nothing written there');
  // `link/..` is the link target's parent to the kernel, the link's own folder to text
  const thirdBefore = await readdir(third);
  for (const args of [
    ['ca', 'token', '--dir', ca, '--service', 'orders', '--out', `${dir}/link-to-sub/../x.token`],
    ['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', `${dir}/link-to-sub/../leafdir`],
  ]) {
    const result = await cli(args);
    t.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.match(result.stderr, /holds a CA \(root\.key\)/, 'refused: through the link, .. is the CA folder');
  }
  t.same(await readdir(third), thirdBefore, 'nothing written into the CA folder');
  // and the other way: a link inside the CA folder, then .., which join() reads as the CA folder itself
  await mkdir(join(dir, 'elsewhere', 'sub'), { recursive: true });
  await symlink(join(dir, 'elsewhere', 'sub'), join(third, 'lnk'));
  const withLink = await readdir(third);
  for (const args of [
    ['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', `${third}/lnk/..`],
    ['ca', 'token', '--dir', ca, '--service', 'orders', '--out', `${third}/lnk/../x.token`],
  ]) {
    const result = await cli(args);
    t.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.match(result.stderr, /holds a CA \(root\.key\)/, 'refused: as text, the path is the CA folder');
  }
  t.same(await readdir(third), withLink, 'no SVID files or token written into the CA folder');
  t.same(await contents(ca), before, 'the CA folder is as it was (no leaf recorded either)');
  t.same(await contents(other), otherBefore, 'so is the other CA');
  const [token, issue] = await Promise.all([
    cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(dir, 'orders.token')]),
    cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(dir, 'orders')]),
  ]);
  t.equal(token.code, 0, token.stderr);
  t.equal(issue.code, 0, issue.stderr);
});

t.test('ca token --out with an empty value: a usage error (exit 2), as for ca issue', async (t) => {
  const ca = join(t.testdir(), 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const result = await cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', '']);
  t.equal(result.code, 2, result.stderr);
  t.match(result.stderr, /^meshcar: --out is empty: give it a value; usage: meshcar ca token /);
  t.equal(result.stdout, '', 'no token made');
});
