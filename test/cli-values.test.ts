// The command line refuses what would fail later, in one line and before doing anything: an
// out-of-range config value at `check`, a lifetime too long for a date or a token, a repeated
// option, an empty or missing option value, the other kind of config; and its help texts read
// right (`help ca`, a long usage, `--version` alone, -h); a name too long is told so, not told
// to use the letters it already uses; what it quotes from argv, and the issues `run` prints,
// stay bounded.

import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { BASE_CONFIG } from './helpers/config-text.js';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function oneLine(t: Tap.Test, result: { code: number; stderr: string }, code: number, pattern: RegExp) {
  t.equal(result.code, code, result.stderr);
  t.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  t.match(result.stderr, pattern);
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

/** Never run: each command here stops at the config or the options. */
const SIDECAR = BASE_CONFIG;
const CA = 'trustDomain: mesh.local\ndir: ca\nlisten: 127.0.0.1:0\nmaxTtl: 24h\n';

t.test('check refuses an HTTP/2 SETTINGS value out of range, in one line naming the key', async (t) => {
  const dir = t.testdir({ 'c.yaml': `${SIDECAR}  limits: {maxConcurrentStreams: 4294967296}\n` });
  const result = await cli(['check', '--config', join(dir, 'c.yaml')]);
  oneLine(t, result, 1, /c\.yaml:8:12: inbound\.limits\.maxConcurrentStreams: 4294967296 is too large: allowed 1 to 10000/);
});

t.test('ca issue and ca token refuse a --ttl too long, as a usage error', async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const [issue, token, issueYear, tokenMonth] = await Promise.all([
    cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(dir, 'a'), '--ttl', '99999999d']),
    cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--ttl', '99999999999999999999d']),
    cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(dir, 'b'), '--ttl', '366d']),
    cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--ttl', '30d']),
  ]);
  oneLine(t, issue!, 2, /^meshcar: --ttl "99999999d" is too long: at most 366d \(.*\); usage: meshcar ca issue/);
  oneLine(t, token!, 2, /^meshcar: --ttl "99999999999999999999d" is too long: at most 30d \(.*\); usage: meshcar ca token/);
  t.equal(token!.stdout, '', 'no token printed');
  t.equal(issueYear!.code, 0, `366d is allowed: ${issueYear!.stderr}`);
  t.equal(tokenMonth!.code, 0, `30d is allowed: ${tokenMonth!.stderr}`);
  const claims = JSON.parse(Buffer.from(tokenMonth!.stdout.trim().split('.')[1] as string, 'base64url').toString()) as { exp: number };
  t.ok(claims.exp <= Date.now() / 1000 + 30 * 86_400 + 5, `exp within 30 days: ${claims.exp}`);
});

t.test('an option given twice is a usage error naming it', async (t) => {
  const dir = t.testdir({ 'a.yaml': SIDECAR, 'b.yaml': SIDECAR });
  const [twice, flagTwice] = await Promise.all([
    cli(['check', '--config', join(dir, 'a.yaml'), '--config', join(dir, 'b.yaml')]),
    cli(['ca', 'status', '--dir', dir, '--json', '--json']),
  ]);
  oneLine(t, twice, 2, /^meshcar: --config is given more than once; give it once; usage: meshcar check --config FILE\n$/);
  oneLine(t, flagTwice, 2, /^meshcar: --json is given more than once/);
});

t.test('an option without its value, or with an empty one, says so in one line', async (t) => {
  const [help, missing, empty, blank] = await Promise.all([cli(['check', '--config', '--help']), cli(['check', '--config']), cli(['check', '--config', '']), cli(['run', '--config', ' '])]);
  oneLine(t, help, 2, /^meshcar: --config needs a value, but the option "--help" follows it \(write --config=-VALUE .*\); usage: meshcar check/);
  oneLine(t, missing, 2, /^meshcar: --config needs a value; usage: meshcar check/);
  oneLine(t, empty, 2, /^meshcar: --config is empty: give it a value; usage: meshcar check/);
  oneLine(t, blank, 2, /^meshcar: --config is empty/);
});

t.test('run and ca serve name the other kind of config in one line', async (t) => {
  const dir = t.testdir({ 'ca.yaml': CA, 'sidecar.yaml': SIDECAR });
  const [run, serve] = await Promise.all([cli(['run', '--config', join(dir, 'ca.yaml')]), cli(['ca', 'serve', '--config', join(dir, 'sidecar.yaml')])]);
  oneLine(t, run, 1, /ca\.yaml:1:1: this is a CA config \(it has dir, maxTtl and no service\): run it with "meshcar ca serve --config FILE"\n$/);
  oneLine(t, serve, 1, /sidecar\.yaml:1:1: this is a sidecar config \(it has service, identity, inbound\): run it with "meshcar run --config FILE"\n$/);
});

t.test('help texts: help GROUP and help COMMAND, --version alone, long usages keep their summary apart', async (t) => {
  const [helpCa, helpCheck, version, versionExtra, top] = await Promise.all([cli(['help', 'ca']), cli(['help', 'check']), cli(['--version']), cli(['--version', 'extra']), cli(['--help'])]);
  t.equal(helpCa.code, 0);
  t.match(helpCa.stdout, /^meshcar ca: one of/);
  t.match(helpCa.stdout, 'meshcar ca token --dir');
  t.notMatch(helpCa.stdout, 'meshcar run', 'only the ca commands');
  t.equal(helpCheck.code, 0);
  t.match(helpCheck.stdout, /^usage: meshcar check --config FILE/);
  t.equal(version.code, 0);
  oneLine(t, versionExtra, 2, /^meshcar: --version takes no arguments, got "extra"/);
  t.equal(versionExtra.stdout, '');
  // every summary starts in the same column, a long usage's on the line below it
  const lines = top.stdout.split('\n');
  for (const summary of ['print a join token for one service identity', 'create a new root and issuer CA in DIR', 'validate a sidecar or CA configuration; print every error']) {
    const line = lines.find((l) => l.endsWith(summary));
    t.equal(line?.indexOf(summary), 75, `${summary}: ${line}`);
    t.match(line, /\s{2}\S/, 'apart from the usage');
  }
});

t.test('a service name or trust domain too long, or . and .., is told why, the value cut short', async (t) => {
  const dir = t.testdir({ 'long.yaml': SIDECAR.replace('service: orders', `service: ${'a'.repeat(129)}`) });
  const [service, dots, domain, config] = await Promise.all([
    cli(['ca', 'token', '--dir', dir, '--service', 'a'.repeat(5000)]),
    cli(['ca', 'issue', '--dir', dir, '--service', '..', '--out', join(dir, 'x')]),
    cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'a'.repeat(256)]),
    cli(['check', '--config', join(dir, 'long.yaml')]),
  ]);
  oneLine(t, service, 2, /^meshcar: --service "a{200}… \(5000 characters\)" is not a service name: it is 5000 characters long, the most is 128; usage: meshcar ca token/);
  oneLine(t, dots, 2, /^meshcar: --service "\.\." is not a service name: "\.\." is a relative path segment/);
  // the metrics' overflow peer label (metrics review)
  const other = await cli(['ca', 'token', '--dir', dir, '--service', '__other__']);
  oneLine(t, other, 2, /^meshcar: --service "__other__" is not a service name: "__other__" is the label meshcar's metrics give the peers past their cap: use another name/);
  oneLine(t, domain, 2, /^meshcar: --trust-domain "a{200}… \(256 characters\)" is not a trust domain: it is 256 characters long, the most is 255; usage: meshcar ca init/);
  // a trust domain is a name: dots between labels, a letter or digit somewhere
  const odd = await Promise.all(['.', '..', 'mesh..local', '.mesh', 'mesh.', '-', '_.-'].map((name) => cli(['ca', 'init', '--dir', join(dir, `ca-${name}`), '--trust-domain', name])));
  for (const result of odd.slice(0, 5)) oneLine(t, result, 2, /is not a trust domain: dots only between labels: no leading, trailing or doubled dot, e.g\. mesh\.local; usage: meshcar ca init/);
  for (const result of odd.slice(5)) oneLine(t, result, 2, /is not a trust domain: it needs a letter or digit, e.g\. mesh\.local; usage: meshcar ca init/);
  t.match(config.stderr, /long\.yaml:1:1: service: "a{129}" is not a service name: it is 129 characters long, the most is 128\n/);
});

t.test('-h is --help for every command, as for meshcar and meshcar ca', async (t) => {
  const commands = [['run'], ['check'], ['doctor'], ['ca', 'init'], ['ca', 'token'], ['ca', 'root', 'add']];
  const results = await Promise.all(commands.map((command) => cli([...command, '-h'])));
  commands.forEach((command, i) => {
    t.equal(results[i]!.code, 0, `${command.join(' ')} -h: ${results[i]!.stderr}`);
    t.match(results[i]!.stdout, new RegExp(`^usage: meshcar ${command.join(' ')} `));
    t.match(results[i]!.stdout, /--help +show this help \(also -h\)/);
  });
  oneLine(t, await cli(['run', '-h', '--help']), 2, /^meshcar: --help is given more than once/);
});

t.test('a huge value, option or word typed is quoted cut short: the line stays short', async (t) => {
  const long = 'x'.repeat(100_000);
  const results = await Promise.all([
    cli(['ca', 'token', '--dir', '.', '--service', 'a', '--ttl', long]),
    cli([long]),
    cli(['ca', long]),
    cli(['--version', long]),
    cli(['run', `--${long}`]),
    cli(['run', '--config=a', long]),
  ]);
  for (const result of results) {
    oneLine(t, result, 2, /x{190,200}… \(100\d{3} characters\)/);
    t.ok(result.stderr.length < 500, `${result.stderr.length} characters: ${result.stderr.slice(0, 120)}`);
  }
});

// a path past PATH_MAX was quoted whole by the error the kernel's refusal made, two or three
// times: a 100 KB --config gave a 200-300 KB line
t.test('a path option longer than a path can be: one short usage line, before any file is read', async (t) => {
  const long = `/tmp/${'a'.repeat(100_000)}`;
  const results = await Promise.all([
    cli(['check', '--config', long]),
    cli(['run', '--config', long]),
    cli(['doctor', '--config', long]),
    cli(['ca', 'serve', '--config', long]),
    cli(['ca', 'status', '--dir', long]),
    cli(['ca', 'token', '--dir', '.', '--service', 'a', '--out', long]),
  ]);
  for (const result of results) {
    oneLine(t, result, 2, /^meshcar: --(config|dir|out) is 100005 bytes long \("\/tmp\/a{190,200}… \(100005 characters\)"\): a path holds at most 4095; give a shorter one\n$/);
    t.ok(result.stderr.length < 500, `${result.stderr.length} characters`);
  }
  // at the bound: the kernel's own refusal, as before (a part of it over 255 bytes)
  oneLine(t, await cli(['check', '--config', `/${'b'.repeat(4094)}`]), 1, /the name is too long|ENAMETOOLONG/);
});

t.test('run, ca serve and doctor give the first 100 issues and a count of the rest; check prints them all', async (t) => {
  const keys = Array.from({ length: 150 }, (_, i) => `k${i}: 1\n`).join('');
  const dir = t.testdir({ 'many.yaml': `${SIDECAR}${keys}`, 'many-ca.yaml': `${CA}${keys}` });
  const [file, caFile] = [join(dir, 'many.yaml'), join(dir, 'many-ca.yaml')];
  const [run, serve, check] = await Promise.all([cli(['run', '--config', file]), cli(['ca', 'serve', '--config', caFile]), cli(['check', '--config', file])]);
  for (const [result, named] of [[run, file], [serve, caFile]] as const) {
    t.equal(result.code, 1);
    const lines = result.stderr.trimEnd().split('\n');
    t.equal(lines.length, 101, 'the first 100 and one line for the rest');
    t.match(lines[0], /many(-ca)?\.yaml:\d+:1: k0: unknown key/);
    t.equal(lines[100], `… and 50 more issues (meshcar check --config ${named} lists them all)`);
  }
  t.equal(check.code, 1);
  t.equal(check.stderr.trimEnd().split('\n').length, 150, 'check: every issue');
  // doctor: one ✗ line each, as many, and its count line
  const doctor = await cli(['doctor', '--config', file]);
  t.equal(doctor.code, 1);
  const lines = doctor.stdout.trimEnd().split('\n');
  t.equal(lines.length, 102, 'doctor: 100 issues, the rest counted, the summary');
  t.match(lines[100], /^✗ config: … and 50 more issues \(meshcar check --config .* lists them all\)/);
  t.equal(lines[101], '150 checks failed', 'the summary counts every issue, not the count line as one');
  const json = JSON.parse((await cli(['doctor', '--config', file, '--json'])).stdout) as { checks: Array<{ count?: number }> };
  t.equal(json.checks[100]?.count, 50, '--json: the count line says how many it stands for');
});

t.test('a mistyped command or option is told its likely spelling', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['chek', '--config', 'x'], /^meshcar: unknown command "chek" \(did you mean "check"\?\); run "meshcar --help"/],
    [['ca', 'statu', '--dir', 'x'], /^meshcar: unknown command "ca statu" \(did you mean "ca status"\?\); run "meshcar ca --help"/],
    [['version'], /^meshcar: unknown command "version" \(did you mean "--version"\?\)/],
    [['-v'], /^meshcar: unknown command "-v" \(did you mean "--version"\?\)/],
    [['-V'], /^meshcar: unknown command "-V" \(did you mean "--version"\?\)/],
    [['ca', 'init', '--dri', 'x'], /^meshcar: Unknown option '--dri' \(did you mean --dir\?\); usage: meshcar ca init/],
    [['ca', 'token', '--single_use'], /^meshcar: Unknown option '--single_use' \(did you mean --single-use\?\)/],
    [['frobnicate'], /^meshcar: unknown command "frobnicate"; run/],
    // a command's last word typed alone (review)
    [['token', '--service', 'orders'], /^meshcar: unknown command "token" \(did you mean "ca token"\?\); run "meshcar --help"/],
    // a group's last word typed alone (review)
    [['root'], /^meshcar: unknown command "root" \(did you mean "ca root"\?\); run "meshcar --help"/],
    // and a typo of one: nearer a last word than a whole command (`roo` was "run", two edits away)
    [['roo'], /^meshcar: unknown command "roo" \(did you mean "ca root"\?\)/],
    [['issu', '--dir', 'x'], /^meshcar: unknown command "issu" \(did you mean "ca issue"\?\)/],
    // but not the two-letter group word alone at the top: `ca` was the guess for any short word (a re-review)
    [['-c', 'orders.yaml'], /^meshcar: unknown command "-c"; run "meshcar --help"/],
    [['ls'], /^meshcar: unknown command "ls"; run "meshcar --help"/],
    // inside a group, its own groups' words too (a re-review)
    [['ca', 'roo', 'add'], /^meshcar: unknown command "ca roo" \(did you mean "ca root"\?\); run "meshcar ca --help"/],
    // inside a group, compared without the group's own words (every ca command shared "ca "), and no guess between ties
    [['ca', 'x'], /^meshcar: unknown command "ca x"; run "meshcar ca --help"/],
    [['ca', 'rotate'], /^meshcar: unknown command "ca rotate"; run "meshcar ca --help"/],
    // one edit from the group ca root (its word is a candidate since a re-review)
    [['ca', 'rot'], /^meshcar: unknown command "ca rot" \(did you mean "ca root"\?\); run "meshcar ca --help"/],
    // the config named as envoy -c or as a bare file, as an Envoy user writes it
    [['run', 'orders.yaml'], /^meshcar: Unexpected argument 'orders\.yaml'.* \(did you mean --config orders\.yaml\?\); usage: meshcar run --config FILE\n/],
    [['check', 'config/example-ca.yml'], /^meshcar: Unexpected argument 'config\/example-ca\.yml'.* \(did you mean --config config\/example-ca\.yml\?\); usage: meshcar check/],
    [['run', '-c', 'orders.yaml'], /^meshcar: Unknown option '-c' \(did you mean --config\?\); usage: meshcar run --config FILE\n/],
    [['ca', 'serve', 'ca.yaml'], /^meshcar: Unexpected argument 'ca\.yaml'.* \(did you mean --config ca\.yaml\?\)/],
    [['ca', 'status', 'certs/ca'], /^meshcar: Unexpected argument 'certs\/ca'. This command does not take positional arguments; usage: meshcar ca status/],
    // a value given to a flag: said in meshcar's words, not parseArgs' quoted, capitalised ones
    [['doctor', '--config', 'x.yaml', '--json=yes'], /^meshcar: --json takes no value: write --json alone; usage: meshcar doctor --config FILE/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args)));
  cases.forEach(([, pattern], i) => oneLine(t, results[i]!, 2, pattern));
});

t.test('help --version and --version --help show the help, as help COMMAND does', async (t) => {
  const results = await Promise.all([cli(['help', '--version']), cli(['--version', '--help']), cli(['--version', '-h'])]);
  for (const result of results) {
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, /^meshcar \S+: a service-mesh sidecar/);
    t.match(result.stdout, '"meshcar --version" prints the version');
  }
});
