// The command line as a user meets it: each command works, keys are private, an existing CA is
// never overwritten by accident, and every mistake is one line on stderr with a non-zero exit.

import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function oneLine(t: Tap.Test, stderr: string, pattern: RegExp) {
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
  t.match(stderr, pattern);
  t.notMatch(stderr, /\n\s+at /, 'no stack trace');
}

t.test('ca init writes the CA with private keys 0600 and refuses to overwrite', async (t) => {
  const dir = join(t.testdir(), 'ca');
  const first = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local']);
  t.equal(first.code, 0, first.stderr);
  for (const file of ['root.crt', 'root.key', 'issuer.crt', 'issuer.key', 'bundle.pem']) t.ok((await stat(join(dir, file))).isFile(), file);
  t.equal((await stat(join(dir, 'root.key'))).mode & 0o777, 0o600);
  t.equal((await stat(join(dir, 'issuer.key'))).mode & 0o777, 0o600);
  const rootBefore = await readFile(join(dir, 'root.crt'), 'utf8');
  const again = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local']);
  t.equal(again.code, 1);
  oneLine(t, again.stderr, /already exists.*--force/);
  t.equal(await readFile(join(dir, 'root.crt'), 'utf8'), rootBefore, 'old CA untouched');
  const forced = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local', '--force']);
  t.equal(forced.code, 0);
  t.not(await readFile(join(dir, 'root.crt'), 'utf8'), rootBefore, '--force replaces it');

  // issue and token only read the CA: the three run side by side
  const tokenFile = join(dir, '..', 'orders.token');
  const [issued, token, tokenOut] = await Promise.all([
    cli(['ca', 'issue', '--dir', dir, '--service', 'orders', '--out', join(dir, '..', 'orders'), '--ttl', '2h']),
    cli(['ca', 'token', '--dir', dir, '--service', 'orders']),
    cli(['ca', 'token', '--dir', dir, '--service', 'orders', '--single-use', '--out', tokenFile]),
  ]);
  t.equal(issued.code, 0, issued.stderr);
  t.match(issued.stdout, /spiffe:\/\/mesh\.local\/svc\/orders/);
  t.equal((await stat(join(dir, '..', 'orders', 'svid.key'))).mode & 0o777, 0o600);

  t.equal(token.code, 0);
  t.match(token.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  t.equal(tokenOut.code, 0);
  t.equal((await stat(tokenFile)).mode & 0o777, 0o600);
});

t.test('mistakes are one clear line and a non-zero exit', async (t) => {
  const dir = t.testdir();
  // independent commands, none of which writes anything: run side by side, checked in order
  const cases: Array<[string[], RegExp]> = [
    // a missing option carries the usage line, as an unknown one does
    [['ca', 'init', '--dir', dir], /--trust-domain is required; usage: meshcar ca init --dir/],
    [['ca', 'token', '--service', 'x', '--out', join(dir, 'x.token')], /--dir is required; usage: meshcar ca token --dir/],
    [['ca', 'init', '--dri', dir], /Unknown option '--dri'.*usage/],
    [['ca', 'init', '--dir', dir, '--trust-domain', 'Bad Domain'], /--trust-domain "Bad Domain"/],
    [['ca', 'token', '--dir', join(dir, 'none'), '--service', 'orders'], /does not exist; run "meshcar ca init/],
    [['ca', 'token', '--dir', dir, '--service', 'a/b'], /--service "a\/b"/],
    [['ca', 'issue', '--dir', dir, '--service', 'x', '--out', dir, '--ttl', 'soon'], /--ttl "soon" is not a duration.*; usage: meshcar ca issue/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  const [usage, ...results] = await Promise.all([cli(['ca', 'init']), ...cases.map(([args]) => cli(args))]);
  cases.forEach(([, pattern], i) => oneLine(t, results[i]!.stderr, pattern));
  t.equal(usage!.code, 2, 'usage errors exit 2');
});

t.test('--help for every command', async (t) => {
  const commands = [['ca', 'init'], ['ca', 'issue'], ['ca', 'token'], ['ca', 'serve'], ['check'], ['run']];
  const [top, ...helps] = await Promise.all([cli(['--help']), ...commands.map((command) => cli([...command, '--help']))]);
  t.equal(top!.code, 0);
  commands.forEach((command, i) => {
    t.match(top!.stdout, `meshcar ${command.join(' ')}`);
    t.equal(helps[i]!.code, 0, command.join(' '));
    t.match(helps[i]!.stdout, /^usage: meshcar/);
  });
});

t.test('check validates a config and prints every error with file:line', async (t) => {
  const dir = t.testdir({
    ca: {},
    'bad.yaml': 'trustDomain: mesh.local\ndir: certs/ca\nlisten: 127.0.0.1:99999\nmaxTtl: 15x\nbogus: 1\n',
  });
  // check also wants the CA folder the config names to hold a whole CA, as ca serve does
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0, 'ca init');
  await writeFile(join(dir, 'good.yaml'), `trustDomain: mesh.local\ndir: ${join(dir, 'ca')}\nlisten: 127.0.0.1:8443\n`);
  const [good, bad] = await Promise.all([cli(['check', '--config', join(dir, 'good.yaml')]), cli(['check', '--config', join(dir, 'bad.yaml')])]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /valid ca configuration/);
  // an empty folder, or one missing its issuer's key, passed check and ca serve refused it
  await mkdir(join(dir, 'empty-ca'));
  await writeFile(join(dir, 'empty.yaml'), `trustDomain: mesh.local\ndir: ${join(dir, 'empty-ca')}\nlisten: 127.0.0.1:8443\n`);
  await cp(join(dir, 'ca'), join(dir, 'keyless-ca'), { recursive: true });
  await rm(join(dir, 'keyless-ca', 'issuer.key'));
  await writeFile(join(dir, 'keyless.yaml'), `trustDomain: mesh.local\ndir: ${join(dir, 'keyless-ca')}\nlisten: 127.0.0.1:8443\n`);
  const [empty, keyless] = await Promise.all([cli(['check', '--config', join(dir, 'empty.yaml')]), cli(['check', '--config', join(dir, 'keyless.yaml')])]);
  t.equal(empty.code, 1, 'an empty CA folder: refused');
  t.match(empty.stderr.trim(), /^\S+empty\.yaml:2:1: dir: \S+issuer\.crt does not exist: run "meshcar ca init/, 'said at dir, with the command that makes one');
  t.equal(keyless.code, 1, 'a CA folder without issuer.key: refused');
  t.match(keyless.stderr.trim(), /^\S+keyless\.yaml:2:1: dir: \S+issuer\.key does not exist/, 'said at dir');
  t.equal(bad.code, 1);
  const lines = bad.stderr.trim().split('\n');
  t.equal(lines.length, 3, bad.stderr);
  t.match(bad.stderr, /bad\.yaml:3:\d+: listen/);
  t.match(bad.stderr, /bad\.yaml:4:\d+: maxTtl/);
  t.match(bad.stderr, /bad\.yaml:5:\d+: bogus/);
});
