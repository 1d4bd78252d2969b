// `meshcar ca ...` with a path that cannot be used (a CA folder that is missing or a file, an
// --out that is a file, a folder, in a missing folder or under /proc, a name too long): one
// line `meshcar: <path>: <what>; <fix>` and exit 1, never a stack trace (exit 70) or a hang;
// and `ca issue` refuses its --out before it signs, so the CA records no leaf it never handed out.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** `meshcar ARGS` (in `cwd`), killed after 10 s: a hang fails the test instead of stalling it. */
function cli(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 10_000, cwd }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }));
  });
}

/** A path part longer than a file name may be (255 bytes). */
const LONG = 'a'.repeat(300);
const TOO_LONG = 'the name is too long (at most 255 bytes a part, 4096 in all); use a shorter path';

const TILDE = 'starts with ~, which only a shell expands, at the start of a word (not after --option=); write the home folder out, or put a space between the option and the path';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('bad paths are one line naming the path, and exit 1', async (t) => {
  const dir = t.testdir({ plainfile: 'not a folder\n', folder: {}, 'to-proc': t.fixture('symlink', '/proc') });
  const ca = join(dir, 'ca');
  const init = await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local']);
  t.equal(init.code, 0, init.stderr);
  const file = join(dir, 'plainfile');
  const missing = join(dir, 'nowhere');
  const notFolder = 'is a file, not a folder; ';
  const cases: Array<[string[], string, string]> = [
    [['ca', 'init', '--dir', file, '--trust-domain', 'mesh.local'], file, notFolder],
    [['ca', 'init', '--dir', join(file, 'sub'), '--trust-domain', 'mesh.local'], join(file, 'sub'), 'a part of the path is a file, not a folder; correct the path'],
    [['ca', 'issue', '--dir', missing, '--service', 'a', '--out', join(dir, 'out-1')], missing, 'does not exist; run "meshcar ca init'],
    [['ca', 'issue', '--dir', file, '--service', 'a', '--out', join(dir, 'out-2')], file, notFolder],
    [['ca', 'token', '--dir', ca, '--service', 'a', '--out', join(missing, 'tok')], missing, 'does not exist; create the folder first'],
    [['ca', 'token', '--dir', ca, '--service', 'a', '--out', join(dir, 'folder')], join(dir, 'folder'), 'is a folder, not a file; name a file'],
    [['ca', 'status', '--dir', file], file, notFolder],
    [['ca', 'status', '--dir', missing], missing, 'does not exist; '],
    [['ca', 'rotate-issuer', '--dir', missing], missing, 'does not exist; '],
    [['ca', 'root', 'add', '--dir', file], file, notFolder],
    [['ca', 'root', 'activate', '--dir', missing], missing, 'does not exist; '],
    [['ca', 'rotate-token-key', '--dir', file], file, notFolder],
    // Node 20's recursive mkdir never returns on /proc
    [['ca', 'init', '--dir', '/proc/meshcar-test/ca', '--trust-domain', 'mesh.local'], '/proc/meshcar-test/ca', 'is under /proc, a file system of the kernel; choose another path'],
    [['ca', 'issue', '--dir', ca, '--service', 'a', '--out', '/proc/meshcar-test'], '/proc/meshcar-test', 'is under /proc, a file system of the kernel; '],
    // through a link: the path as typed is not under /proc, where it leads is
    [['ca', 'issue', '--dir', ca, '--service', 'a', '--out', join(dir, 'to-proc', 'x', 'y')], join(dir, 'to-proc', 'x', 'y'), 'is under /proc, a file system of the kernel; '],
    // a part over 255 bytes: the kernel's ENAMETOOLONG, which was a stack trace and exit 70
    [['ca', 'init', '--dir', join(dir, LONG), '--trust-domain', 'mesh.local'], join(dir, LONG), TOO_LONG],
    [['ca', 'status', '--dir', join(dir, LONG)], join(dir, LONG), TOO_LONG],
    [['ca', 'rotate-issuer', '--dir', join(dir, LONG, 'ca')], join(dir, LONG, 'ca'), TOO_LONG],
    [['ca', 'issue', '--dir', ca, '--service', 'a', '--out', join(dir, LONG)], join(dir, LONG), TOO_LONG],
    [['ca', 'token', '--dir', join(dir, LONG), '--service', 'a'], join(dir, LONG), TOO_LONG],
    // ~ after --option= is not expanded: it made a folder named ~ in the working directory
    [['ca', 'init', '--dir=~/meshcar-test-ca', '--trust-domain', 'mesh.local'], '~/meshcar-test-ca', TILDE],
    [['ca', 'issue', '--dir', ca, '--service', 'a', '--out=~/meshcar-test-out'], '~/meshcar-test-out', TILDE],
    [['ca', 'token', '--dir', ca, '--service', 'a', '--out=~nobody/t.token'], '~nobody/t.token', 'starts with ~nobody, which only a shell expands'],
    // the suggested init quotes the ~: pasted, it makes the folder status looked for, not one in home
    [['ca', 'status', '--dir=~/meshcar-test-ca'], '~/meshcar-test-ca', 'does not exist; run "meshcar ca init --dir \'~/meshcar-test-ca\' --trust-domain TD" first, or correct the path; ~ is not expanded here'],
    // a name the kernel takes, but not with the temp file's decoration: named as typed
    [['ca', 'token', '--dir', ca, '--service', 'a', '--out', join(dir, 'b'.repeat(250))], join(dir, 'b'.repeat(250)), 'the file name is too long (at most 237 bytes here); use a shorter name'],
  ];
  // in the test folder: a ~ path that is not refused lands there, not in the checkout
  const results = await Promise.all(cases.map(([args]) => cli(args, dir)));
  cases.forEach(([args, path, what], i) => {
    const result = results[i]!;
    const command = args.slice(0, args.indexOf(args.find((a) => a.startsWith('--'))!)).join(' ');
    t.equal(result.code, 1, `${command}: exit 1 (${result.stderr})`);
    t.equal(result.stderr.split('\n').length, 2, `${command}: one line: ${result.stderr}`);
    t.match(result.stderr, new RegExp(`^meshcar: ${escape(path)}: ${escape(what)}`), command);
    t.match(result.stderr, /^meshcar: [^\n]+: [^\n;]+; [^\n]+\n$/, `${command}: <path>: <what>; <fix>`);
  });
});

t.test('ca issue refuses an --out that is a file before it signs', async (t) => {
  const dir = t.testdir({ plainfile: 'not a folder\n' });
  const ca = join(dir, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  // a first leaf makes the record; a refused second one must not push it further
  t.equal((await cli(['ca', 'issue', '--dir', ca, '--service', 'a', '--out', join(dir, 'a'), '--ttl', '1h'])).code, 0);
  const recorded = join(ca, 'leaf-lifetime.json');
  const [before, state] = await Promise.all([readFile(recorded, 'utf8'), readFile(join(ca, 'state.json'), 'utf8')]);
  const refused = await cli(['ca', 'issue', '--dir', ca, '--service', 'a', '--out', join(dir, 'plainfile'), '--ttl', '300d']);
  t.equal(refused.code, 1, refused.stderr);
  t.match(refused.stderr, /: is a file, not a folder; /);
  t.equal(await readFile(recorded, 'utf8'), before, 'leaf-lifetime.json is as it was: no leaf was signed');
  t.equal(await readFile(join(ca, 'state.json'), 'utf8'), state);
});
