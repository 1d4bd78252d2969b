// identity.dir where a sidecar may not keep its key (src/config/identity-dir-guard.ts): under
// /proc, Node's recursive mkdir never returned and the sidecar spun a core for good, deaf to
// SIGTERM; in a CA's folder the store turned the CA's bundle.pem into a link into its own
// generations and wrote svid.key beside root.key (the bad-input review). `check` says so at
// identity.dir, and `run` stops at once with one line, before it asks the CA anything (here
// the CA's address is one nothing listens on: a run that went on would wait 30 s for it).

import t from 'tap';
import { lstat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { runCli } from '../helpers/ca.js';

const TOKEN = [{ alg: 'ES256', typ: 'meshcar-join+jwt', kid: 'k' }, { sub: 'spiffe://mesh.local/svc/orders', exp: 4_000_000_000 }]
  .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
  .concat('c2ln')
  .join('.');

async function configWith(dir: string, identityDir: string, name: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(
    file,
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:1", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${identityDir}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\nadmin: {listen: "127.0.0.1:0"}\n`,
  );
  return file;
}

t.test('identity.dir under /proc or /sys: check refuses it; run stops at once, saying why', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN}\n` });
  for (const kernel of ['/proc/meshcar-test-identity', '/sys/meshcar-test-identity']) {
    const file = await configWith(dir, kernel, 'kernel.yaml');
    const check = await runCli(['check', '--config', file]);
    t.equal(check.code, 1, `${kernel}: check fails`);
    t.match(check.stderr, /identity\.dir: .*is under \/(proc|sys), a file system of the kernel/, 'at identity.dir, saying why');
    const started = Date.now();
    const run = await runCli(['run', '--config', file]);
    t.equal(run.code, 1, `${kernel}: run exits 1`);
    t.ok(Date.now() - started < 10_000, `at once (${Date.now() - started} ms), not after the CA's 30 s`);
    t.match(run.stderr, /identity\.dir .*is under \/(proc|sys), a file system of the kernel/, 'saying why');
  }
});

t.test("identity.dir in a CA's folder or inside one: refused, and the CA's files untouched", async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN}\n`, half: { 'root.key': 'a key', 'issuer.key': 'a key', 'state.json': '{"initializing": true}' } });
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0, 'ca init');
  for (const [identityDir, said] of [
    [ca, /holds a CA \(root\.key\)/],
    [join(ca, 'orders'), /is inside .*ca, which holds a CA/],
    // an init cut short between the keys and the certificates (its review)
    [join(dir, 'half', 'orders'), /is inside .*half, which holds a CA \(root\.key\)/],
  ] as const) {
    const file = await configWith(dir, identityDir, 'in-ca.yaml');
    const check = await runCli(['check', '--config', file]);
    t.equal(check.code, 1, `${identityDir}: check fails`);
    t.match(check.stderr, said, 'saying which CA');
    const run = await runCli(['run', '--config', file]);
    t.equal(run.code, 1, 'run exits 1');
    t.match(run.stderr, said);
  }
  t.ok((await lstat(join(ca, 'bundle.pem'))).isFile(), "the CA's bundle.pem is still its own file, not a link");
  await t.rejects(lstat(join(ca, 'svid.key')), 'no svid.key beside root.key');
});

// the third review: a state.json anywhere above identity.dir (any app's file name) refused a
// deployment that had always started, and /dev/shm (a tmpfs, keys kept there on purpose) was
// taken for the kernel's: a CA is known by its key pairs here, and /dev/shm is allowed
t.test('a state.json above identity.dir, and /dev/shm, are no reasons to refuse it', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${TOKEN}\n`, app: { 'state.json': '{}', 'root.crt': 'a certificate, no key' } });
  for (const identityDir of [join(dir, 'app', 'identity'), '/dev/shm/meshcar-test-identity']) {
    const check = await runCli(['check', '--config', await configWith(dir, identityDir, 'fine.yaml')]);
    t.equal(check.code, 0, `${identityDir}: check passes (${check.stderr.trim()})`);
  }
});
