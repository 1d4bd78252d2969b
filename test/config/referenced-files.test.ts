// `meshcar check` looks past the YAML: each file a config names (CA bundle, join token, certs,
// key, the CA folder) must exist, be readable and hold what it should; each problem is one
// issue at the key that names the file, and `run` is not needed to find it.

import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { checkConfigFile } from '../../src/config/load-any.js';
import { formatIssue } from '../../src/config/issues.js';

/** A join token's shape (not signed: check reads its claims only) granting `sub`. */
const tokenFor = (sub: string, exp = 4_000_000_000) =>
  [{ alg: 'ES256', typ: 'meshcar-join+jwt', kid: 'k' }, { sub, exp }]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .concat('c2ln')
    .join('.');
const TOKEN_SHAPED = tokenFor('spiffe://mesh.local/svc/orders');

function sidecarYaml(identity: string, service = 'orders', trustDomain = 'mesh.local'): string {
  return `service: ${service}\ntrustDomain: ${trustDomain}\nidentity:\n${identity}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`;
}

async function check(file: string): Promise<string[]> {
  return (await checkConfigFile(file)).issues.map(formatIssue);
}

/** `meshcar check --config FILE` as a user runs it. */
function checkCli(file: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', 'check', '--config', file], (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stderr }));
  });
}

t.test('a sidecar on the CA: bundle, token and identity folder', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN_SHAPED}\n`, 'garbage.token': 'hello\n', 'not-a-dir': 'x', 'empty.pem': '' });
  const ca = (bundle: string, token: string, identityDir: string) => `  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, bundle)}, token: ${join(dir, token)}}\n  dir: ${join(dir, identityDir)}\n`;
  await writeFile(join(dir, 'good.yaml'), sidecarYaml(ca('bundle.pem', 'orders.token', 'identity')));
  await writeFile(join(dir, 'missing.yaml'), sidecarYaml(ca('nope.pem', 'nope.token', 'identity')));
  await writeFile(join(dir, 'wrong.yaml'), sidecarYaml(ca('empty.pem', 'garbage.token', 'not-a-dir')));

  t.same(await check(join(dir, 'good.yaml')), [], 'existing, parsable files; the identity folder is made on first start');
  t.match(await check(join(dir, 'missing.yaml')), [
    /missing\.yaml:4:\d+: identity\.ca\.bundle: .*nope\.pem does not exist/,
    /missing\.yaml:4:\d+: identity\.ca\.token: .*nope\.token does not exist/,
  ]);
  const wrong = await check(join(dir, 'wrong.yaml'));
  t.equal(wrong.length, 3, wrong.join('\n'));
  t.match(wrong.join('\n'), /identity\.ca\.bundle: .*empty\.pem: it holds no PEM certificate/);
  t.match(wrong.join('\n'), /identity\.ca\.token: .*garbage\.token: it does not hold a join token/);
  t.match(wrong.join('\n'), /identity\.dir: .*not-a-dir is not a directory/);
});

t.test('a join token must grant the service and trust domain of the config (review finding 7)', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN_SHAPED}\n`, 'other-td.token': tokenFor('spiffe://other.local/svc/frontend') });
  const ca = (token: string) => `  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, token)}}\n  dir: ${join(dir, 'identity')}\n`;
  await writeFile(join(dir, 'frontend.yaml'), sidecarYaml(ca('orders.token'), 'frontend'));
  await writeFile(join(dir, 'other-td.yaml'), sidecarYaml(ca('other-td.token'), 'frontend', 'mesh.local'));
  t.match(await check(join(dir, 'frontend.yaml')), [
    /frontend\.yaml:4:\d+: identity\.ca\.token: .*orders\.token: the join token grants spiffe:\/\/mesh\.local\/svc\/orders \(another service\), but service and trustDomain make this sidecar spiffe:\/\/mesh\.local\/svc\/frontend/,
  ]);
  t.match(await check(join(dir, 'other-td.yaml')), [/identity\.ca\.token: .*grants spiffe:\/\/other\.local\/svc\/frontend \(trust domain other\.local, not trustDomain mesh\.local\)/]);
  const cli = await checkCli(join(dir, 'frontend.yaml'));
  t.equal(cli.code, 1, 'meshcar check exits 1');
  t.match(cli.stderr, /frontend\.yaml:4:\d+: identity\.ca\.token: .*grants spiffe:\/\/mesh\.local\/svc\/orders/);
});

/**
 * identity.dir folders as `run` finds them (the flat layout `meshcar ca issue --out` writes): a
 * valid set of orders', one near its end (run renews it with itself), an expired one, another
 * service's, and a chain whose key is missing.
 */
async function storedSets(pki: Awaited<ReturnType<typeof makePki>>): Promise<Record<string, Record<string, string>>> {
  const set = (leaf: { chainPem: string; privateKeyPem: string }, withKey = true) => ({ 'svid.crt': leaf.chainPem, 'bundle.pem': pki.bundlePem, ...(withKey ? { 'svid.key': leaf.privateKeyPem } : {}) });
  const orders = await pki.issue('spiffe://mesh.local/svc/orders');
  return {
    stored: set(orders),
    // 3 minutes of an hour left: too near its end to serve, so run renews it over mTLS with itself
    'near-end': set(await pki.issue('spiffe://mesh.local/svc/orders', { now: new Date(Date.now() - 57 * 60_000), lifetimeMs: 3_600_000 })),
    expired: set(await pki.issue('spiffe://mesh.local/svc/orders', { now: new Date(Date.now() - 7_200_000), lifetimeMs: 3_600_000 })),
    'other-service': set(await pki.issue('spiffe://mesh.local/svc/payments')),
    'no-key': set(orders, false),
  };
}

// an expired token passed check, and run then failed with 401 token_expired; it is refused when
// the sidecar needs it to start (no SVID in identity.dir it would start on), not when one is stored
t.test('an expired join token: refused unless identity.dir holds an SVID run would start on', async (t) => {
  const pki = await makePki('mesh.local');
  const expired = tokenFor('spiffe://mesh.local/svc/orders', Math.floor(Date.now() / 1000) - 60);
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${expired}\n`, ...(await storedSets(pki)) });
  const ca = (identityDir: string) => `  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, identityDir)}\n`;
  for (const folder of ['identity', 'expired', 'other-service', 'no-key']) {
    await writeFile(join(dir, `${folder}.yaml`), sidecarYaml(ca(folder)));
    t.match(await check(join(dir, `${folder}.yaml`)), [/identity\.ca\.token: .*orders\.token: the join token expired at \d{4}-.*identity\.dir holds no valid SVID of this service to start on.*token_expired.*meshcar ca token --dir CA_DIR --service orders/], `identity.dir ${folder}: refused, with the command that writes a fresh one`);
  }
  for (const folder of ['stored', 'near-end']) {
    await writeFile(join(dir, `${folder}.yaml`), sidecarYaml(ca(folder)));
    t.same(await check(join(dir, `${folder}.yaml`)), [], `identity.dir ${folder}: an SVID of this service run starts on: the token is not needed at start (doctor judges the SVID)`);
  }
});

// check refused a config whose token was deleted after the first start, which run starts with
// (on the stored SVID) and doctor passes (contract review); and its first mend took any
// svid.crt for a set run would start on (review: an expired one passed check, then run failed)
t.test('a join token file gone: refused unless identity.dir holds an SVID run would start on', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, ...(await storedSets(pki)) });
  const ca = (identityDir: string) => `  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, identityDir)}\n`;
  for (const folder of ['identity', 'expired', 'other-service', 'no-key']) {
    await writeFile(join(dir, `${folder}.yaml`), sidecarYaml(ca(folder)));
    const said = await check(join(dir, `${folder}.yaml`));
    t.match(said, [/identity\.ca\.token: .*orders\.token does not exist/], `identity.dir ${folder}: the sidecar needs it to start`);
    // and why what is stored there is passed over, as run logs it (check said nothing of it)
    const why = { expired: /\(the SVID stored in \S+\/expired is not used: .*expired at \d{4}-/, 'other-service': /\(the SVID stored in \S+\/other-service is not used: .*svc\/payments/ }[folder];
    if (why) t.match(said[0], why, `identity.dir ${folder}: the line says why its SVID is not used`);
    else t.notMatch(said[0], /is not used/, `identity.dir ${folder}: nothing usable stored, nothing more said`);
  }
  for (const folder of ['stored', 'near-end']) {
    await writeFile(join(dir, `${folder}.yaml`), sidecarYaml(ca(folder)));
    t.same(await check(join(dir, `${folder}.yaml`)), [], `identity.dir ${folder}: an SVID of this service run starts on: not needed at start`);
  }
  const cli = await checkCli(join(dir, 'stored.yaml'));
  t.equal(cli.code, 0, `meshcar check exits 0: ${cli.stderr}`);
  t.same((await readdir(join(dir, 'stored'))).sort(), ['bundle.pem', 'svid.crt', 'svid.key'], 'check wrote nothing there (run would migrate the flat files into a generation)');
});

t.test('a sidecar on files: cert, key and bundle each hold the right thing', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem, 'locked.key': leaf.privateKeyPem });
  const files = (cert: string, key: string, bundle: string) => `  files: {cert: ${join(dir, cert)}, key: ${join(dir, key)}, bundle: ${join(dir, bundle)}}\n`;
  await writeFile(join(dir, 'good.yaml'), sidecarYaml(files('svid.crt', 'svid.key', 'bundle.pem')));
  await writeFile(join(dir, 'swapped.yaml'), sidecarYaml(files('svid.key', 'svid.crt', 'gone.pem')));
  t.same(await check(join(dir, 'good.yaml')), []);
  t.match(await check(join(dir, 'swapped.yaml')), [
    /identity\.files\.cert: .*svid\.key: it holds no PEM certificate/,
    /identity\.files\.key: .*svid\.crt: it holds no PEM private key/,
    /identity\.files\.bundle: .*gone\.pem does not exist/,
  ]);
  if (process.getuid?.() === 0) {
    t.comment('running as root: every file is readable, so the unreadable-key case cannot be shown here');
  } else {
    await chmod(join(dir, 'locked.key'), 0);
    await writeFile(join(dir, 'locked.yaml'), sidecarYaml(files('svid.crt', 'locked.key', 'bundle.pem')));
    t.match(await check(join(dir, 'locked.yaml')), [/identity\.files\.key: cannot read .*locked\.key: permission denied/]);
  }
});

t.test('a CA config: its folder must exist; meshcar check prints the line and exits 1', async (t) => {
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: /nonexistent/meshcar-ca\n' });
  const result = await checkCli(join(dir, 'ca.yaml'));
  t.equal(result.code, 1);
  t.match(result.stderr, /^.*ca\.yaml:2:1: dir: \/nonexistent\/meshcar-ca does not exist/);
  // and the command that makes it, with the config's trust domain (a newcomer before make ca)
  t.match(result.stderr, /; make the CA first: meshcar ca init --dir \/nonexistent\/meshcar-ca --trust-domain mesh\.local\n$/);
  const other = t.testdir({ 'ca.yaml': 'trustDomain: example.org\ndir: certs/ca\n' });
  const byMake = await new Promise<{ stderr: string }>((resolve) => execFile(process.execPath, [join(process.cwd(), 'dist/cli.js'), 'check', '--config', 'ca.yaml'], { cwd: other }, (_err, _stdout, stderr) => resolve({ stderr })));
  t.match(byMake.stderr, /--trust-domain example\.org \(or make ca TRUST_DOMAIN=example\.org in the meshcar folder\)\n$/, 'certs/ca is the folder make ca makes');
});

t.test('a device, a pipe or a ~ path named as a file: said as it is', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const fifo = join(dir, 'pipe.pem');
  await new Promise<void>((resolve, reject) => execFile('mkfifo', [fifo], (err) => (err ? reject(err) : resolve())));
  // ~ is the shell's: in a config it is a folder named ~ (here, inside a path)
  const yaml = `  files: {cert: /dev/null, key: ${fifo}, bundle: ${join(dir, '~', 'bundle.pem')}}\n`;
  await writeFile(join(dir, 'odd.yaml'), sidecarYaml(yaml));
  t.match(await check(join(dir, 'odd.yaml')), [
    /identity\.files\.cert: \/dev\/null is a device, not a file$/,
    /identity\.files\.key: .*pipe\.pem is a pipe, not a file$/,
    /identity\.files\.bundle: .*\/~\/bundle\.pem does not exist \(relative paths .*\); ~ is not expanded here \(only a shell does, at the start of a word\): write the home folder out$/,
  ]);
  // a path that starts with ~ is refused as it is read: identity.dir is made at the first start,
  // and ~/svid made a folder named ~ under the working directory, the private key in it
  await writeFile(join(dir, 'tilde.yaml'), sidecarYaml('  ca: {url: "https://127.0.0.1:1", bundle: ~/bundle.pem}\n  dir: ~/svid\n'));
  t.same(await check(join(dir, 'tilde.yaml')), [
    `${join(dir, 'tilde.yaml')}:4:36: identity.ca.bundle: "~/bundle.pem" starts with ~, which only a shell expands: write the home folder out`,
    `${join(dir, 'tilde.yaml')}:5:3: identity.dir: "~/svid" starts with ~, which only a shell expands: write the home folder out`,
  ]);
  // the config file itself: `--config=~/sidecar.yaml` keeps its ~
  const cli = await checkCli('~/meshcar-no-such-config.yaml');
  t.equal(cli.code, 1);
  t.equal(cli.stderr, '~/meshcar-no-such-config.yaml: cannot read the config file: no such file; ~ is not expanded here (only a shell does, at the start of a word): write the home folder out\n');
});

t.test('a PEM file over 1 MiB is refused by check, as run refuses it', async (t) => {
  const pki = await makePki('mesh.local');
  // a real bundle padded with PEM-legal comment lines past 1 MiB: run reads at most 1 MiB
  const padded = `${pki.bundlePem}${'# padding\n'.repeat(110_000)}`;
  const dir = t.testdir({ 'big.pem': padded, 'orders.token': `${TOKEN_SHAPED}\n` });
  await writeFile(join(dir, 'big.yaml'), sidecarYaml(`  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'big.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, 'identity')}\n`));
  const issues = await check(join(dir, 'big.yaml'));
  t.equal(issues.length, 1, issues.join('\n'));
  t.match(issues[0], /identity\.ca\.bundle: .*big\.pem .*1 ?MiB|identity\.ca\.bundle: .*big\.pem .*1048576/);
});

t.test('an identity.dir under a plain file can never be created: check says so, exit 1 (it passed as "not made yet")', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN_SHAPED}\n`, 'a-file': 'x' });
  const file = join(dir, 'under-a-file.yaml');
  await writeFile(file, sidecarYaml(`  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, 'a-file', 'identity')}\n`));
  t.same(await check(file), [`${file}:5:3: identity.dir: ${join(dir, 'a-file', 'identity')} cannot be created: a part of its path is a file, not a directory`]);
  const cli = await checkCli(file);
  t.equal(cli.code, 1);
  t.match(cli.stderr, /identity\.dir: .*cannot be created: a part of its path is a file/);
});

t.test("a spec problem of an upstream written with capitals is reported at that upstream's key, with its line", async (t) => {
  const dir = t.testdir({ 'a.crt': 'x', 'a.key': 'x', 'b.pem': 'x' });
  const yaml = (name: string) =>
    `service: web\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'a.crt')}, key: ${join(dir, 'a.key')}, bundle: ${join(dir, 'b.pem')}}\noutbound:\n  listen: 127.0.0.1:0\n  upstreams:\n    ${name}:\n      endpoints: [127.0.0.1:1]\n      identity: spiffe://mesh.local/svc/payments\n      openapi: {spec: ${join(dir, 'nope.yaml')}}\n`;
  await writeFile(join(dir, 'upper.yaml'), yaml('Payments'));
  const issues = await check(join(dir, 'upper.yaml'));
  t.match(issues.find((i) => i.includes('nope.yaml')), /upper\.yaml:11:\d+: outbound\.upstreams\.Payments\.openapi\.spec: /, 'at the key as written, not at outbound.upstreams');
});

// Node's "ELOOP: too many symbolic links encountered, stat ..." reached the user (a review)
t.test('a file the config names that is a link loop: said in words', async (t) => {
  const dir = t.testdir({ 'orders.token': `${TOKEN_SHAPED}\n` });
  await symlink(join(dir, 'loop-b'), join(dir, 'loop-a'));
  await symlink(join(dir, 'loop-a'), join(dir, 'loop-b'));
  const file = join(dir, 'loop.yaml');
  await writeFile(file, sidecarYaml(`  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'loop-a')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, 'id')}\n`));
  const said = await check(file);
  t.match(said, [/identity\.ca\.bundle: cannot read \S+loop-a: too many symbolic links; correct the path$/]);
  t.notMatch(said.join('\n'), /ELOOP/);
});
