// `meshcar ca status` and the CA's expiry metrics: what it prints agrees with openssl's reading
// of the files (serial, subject key id, notAfter), --json is the same facts for scripts, and
// the CA server's /metrics shows each root by role and the signing issuer's expiry, follows a
// root rotation step without a restart, and passes promtool.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, makeCaDir, openssl, promtoolCheck, runCli, startTestCa, type TestCa } from '../helpers/ca.js';
import { metricValue } from '../helpers/mesh.js';
import { startMeshcar } from '../helpers/process.js';
import { rootAdd } from '../../src/ca/lifecycle.js';
import type { CaStatus } from '../../src/ca/status.js';
import { readmeAlertRules } from '../helpers/prometheus.js';

let ca: TestCa;
t.before(async () => {
  ca = await startTestCa();
});
t.teardown(() => ca.close());

/** serial (lower-case hex), SKI (lower-case, colons) and notAfter (ISO) as openssl reads them. */
async function opensslFacts(file: string): Promise<{ serial: string; ski: string; notAfter: string }> {
  const text = await openssl(['x509', '-noout', '-serial', '-enddate', '-ext', 'subjectKeyIdentifier'], await readFile(file, 'utf8'));
  const serial = (/serial=([0-9A-F]+)/.exec(text)?.[1] ?? '').toLowerCase().replace(/^0+/, '');
  const ski = (/Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(text)?.[1] ?? '').toLowerCase();
  const notAfter = new Date(/notAfter=(.+)/.exec(text)?.[1] ?? '').toISOString();
  return { serial, ski, notAfter };
}

t.test('status after init: one active root, the signing issuer, no rotation; text and --json agree with openssl', async (t) => {
  const json = await runCli(['ca', 'status', '--dir', ca.dir, '--json']);
  t.equal(json.code, 0, json.stderr);
  const status = JSON.parse(json.stdout) as CaStatus;
  const root = await opensslFacts(join(ca.dir, 'root.crt'));
  const issuer = await opensslFacts(join(ca.dir, 'issuer.crt'));
  t.same(status.roots.map((r) => r.role), ['active']);
  t.same({ serial: status.roots[0]?.serial.replace(/^0+/, ''), ski: status.roots[0]?.subjectKeyId, notAfter: status.roots[0]?.notAfter }, root, 'root facts = openssl');
  t.equal(status.issuers.length, 1);
  t.same({ serial: status.issuers[0]?.serial.replace(/^0+/, ''), ski: status.issuers[0]?.subjectKeyId, notAfter: status.issuers[0]?.notAfter }, issuer, 'issuer facts = openssl');
  t.equal(status.issuers[0]?.signing, true);
  t.equal(status.issuers[0]?.rootSerial, status.roots[0]?.serial, 'the issuer is under the active root');
  t.equal(status.rootRotation.step, 'none');
  t.equal(status.tokenKeys.length, 1, 'a token key of its own');
  t.ok(Date.parse(status.issuers[0]?.notAfter ?? '') <= Date.parse(status.roots[0]?.notAfter ?? ''), 'ca init never makes an issuer that outlives its root');

  const text = await runCli(['ca', 'status', '--dir', ca.dir]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /root rotation: none under way/);
  t.match(text.stdout, new RegExp(`active +serial ${status.roots[0]?.serial}  ski ${root.ski}  notAfter ${root.notAfter}`));
  t.match(text.stdout, new RegExp(`signing +serial ${status.issuers[0]?.serial}  ski ${issuer.ski}  notAfter ${issuer.notAfter}`));

  const missing = await runCli(['ca', 'status', '--dir', join(ca.dir, 'nowhere')]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  t.match(missing.stderr, /does not exist; run "meshcar ca init/);
});

t.test('a folder made before token keys: status says none yet, and neither status nor check makes one', async (t) => {
  const dir = await makeCaDir();
  await Promise.all(['token.key', 'token-keys.json'].map((file) => rm(join(dir, file))));
  const status = await runCli(['ca', 'status', '--dir', dir]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /token keys:\n  none yet: ca serve makes the first/);
  await writeFile(join(dir, '..', 'ca.yaml'), `trustDomain: mesh.local\ndir: ${dir}\nlisten: 127.0.0.1:8443\n`);
  const check = await runCli(['check', '--config', join(dir, '..', 'ca.yaml')]);
  t.equal(check.code, 0, check.stderr);
  // both run without the CA's lock, beside ca serve or rotate-token-key: a key written here
  // could stand beside another's list, and the CA then refused to start
  t.same((await readdir(dir)).filter((file) => file.startsWith('token')), [], 'no token key written');
});

t.test('ca token on a folder made before token keys waits for the CA lock before it makes the first one', { timeout: 30_000 }, async (t) => {
  const dir = await makeCaDir();
  await Promise.all(['token.key', 'token-keys.json'].map((file) => rm(join(dir, file))));
  // another command holds the folder (a live process: this one) for longer than the 10 s wait
  await writeFile(join(dir, '.lock'), String(process.pid));
  const token = await runCli(['ca', 'token', '--dir', dir, '--service', 'orders']);
  t.equal(token.code, 1, 'ca token gives up');
  t.equal(token.stderr.trim().split('\n').length, 1, token.stderr);
  t.same((await readdir(dir)).filter((file) => file.startsWith('token')), [], 'and wrote no token key beside the holder');
  await rm(join(dir, '.lock'));
  const after = await runCli(['ca', 'token', '--dir', dir, '--service', 'orders']);
  t.equal(after.code, 0, after.stderr);
  t.same((await readdir(dir)).filter((file) => file.startsWith('token')).sort(), ['token-keys.json', 'token.key'], 'the lock free: the first token key made');
});

t.test('ca serve on a folder made before token keys makes the first one under the CA lock', { timeout: 40_000 }, async (t) => {
  const dir = await makeCaDir();
  await Promise.all(['token.key', 'token-keys.json'].map((file) => rm(join(dir, file))));
  const config = join(dir, '..', 'ca-serve.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${dir}\nlisten: 127.0.0.1:0\nserverNames: [localhost]\n`);
  // another command holds the folder for longer than the 10 s wait: serve does not start, and
  // writes no key beside it (it wrote one at once, beside whatever the holder was writing)
  await writeFile(join(dir, '.lock'), String(process.pid));
  const held = startMeshcar(['ca', 'serve', '--config', config]);
  t.teardown(() => held.stop());
  t.not(await held.exited(), 0, 'ca serve gives up');
  t.match(held.stderr.join('\n') + held.lines.map((line) => String(line.msg)).join('\n'), /being changed by another meshcar process/);
  t.same((await readdir(dir)).filter((file) => file.startsWith('token')), [], 'no token key written');
  await rm(join(dir, '.lock'));
  const serve = startMeshcar(['ca', 'serve', '--config', config]);
  t.teardown(() => serve.stop());
  await serve.waitFor((line) => line.msg === 'CA server listening', 20_000);
  t.same((await readdir(dir)).filter((file) => file.startsWith('token')).sort(), ['token-keys.json', 'token.key'], 'the lock free: the first token key made');
});

t.test('CA /metrics: issuer and root expiry by role, a pending root seen without a restart, promtool clean', async (t) => {
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const scrape = async () => (await callCa(ca.server.url, { path: '/metrics', ca: bundle })).text;
  const before = await scrape();
  const issuer = await opensslFacts(join(ca.dir, 'issuer.crt'));
  const root = await opensslFacts(join(ca.dir, 'root.crt'));
  t.equal(metricValue(before, 'meshcar_ca_issuer_expiry_timestamp_seconds'), Date.parse(issuer.notAfter) / 1000);
  t.equal(metricValue(before, 'meshcar_ca_root_expiry_timestamp_seconds{role="active"}'), Date.parse(root.notAfter) / 1000);
  t.equal(metricValue(before, 'meshcar_ca_root_expiry_timestamp_seconds{role="pending"}'), undefined, 'no pending root yet');
  t.notMatch(before, /meshcar_identity_/, 'no sidecar family from the CA (a 0 bundle-roots gauge would set off an alert)');
  // nor any other sidecar family as an empty # TYPE line: only the CA's, the build info and the process's
  const families = [...before.matchAll(/^# TYPE (meshcar_\w+) /gm)].map((m) => m[1] as string);
  t.same(families.filter((name) => !name.startsWith('meshcar_ca_') && name !== 'meshcar_build_info'), [], `the CA's meshcar families: ${families.join(', ')}`);
  t.notMatch(before, /meshcar_requests_total|meshcar_config_reloads_total|meshcar_retries_total/);
  t.match(before, /^process_cpu_user_seconds_total /m, 'process metrics stay');

  await rootAdd(ca.dir);
  const during = await scrape();
  const pending = await opensslFacts(join(ca.dir, 'root-pending.crt'));
  t.equal(metricValue(during, 'meshcar_ca_root_expiry_timestamp_seconds{role="pending"}'), Date.parse(pending.notAfter) / 1000, 'the pending root appears at the next scrape');
  t.equal(metricValue(during, 'meshcar_ca_root_expiry_timestamp_seconds{role="active"}'), Date.parse(root.notAfter) / 1000);

  const status = JSON.parse((await runCli(['ca', 'status', '--dir', ca.dir, '--json'])).stdout) as CaStatus;
  t.same(status.roots.map((r) => r.role), ['active', 'pending']);
  t.equal(status.rootRotation.step, 'added');
  t.equal(status.rootRotation.next?.command, 'root activate');
  const text = (await runCli(['ca', 'status', '--dir', ca.dir])).stdout;
  t.match(text, /step 1 of 3 done \(root add\)/);
  t.match(text, /next: meshcar ca root activate --dir .*, allowed from \S+ \(in (24h|1d)\)/, 'says what comes next and when');

  const checked = await promtoolCheck(during);
  t.equal(checked.code, 0, `promtool: ${checked.output || 'clean'}`);
});

t.test("the README's alert rules on the expiry metrics pass promtool check rules", async (t) => {
  const rules = await readmeAlertRules();
  t.match(rules, /meshcar_ca_issuer_expiry_timestamp_seconds/);
  t.match(rules, /meshcar_ca_root_expiry_timestamp_seconds\{role="active"\}/);
  t.match(rules, /meshcar_identity_bundle_roots/);
  const file = join(t.testdir({ 'rules.yaml': rules }), 'rules.yaml');
  const checked = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile('promtool', ['check', 'rules', file], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, output: stdout + stderr }));
  });
  t.equal(checked.code, 0, checked.output);
  t.match(checked.output, /SUCCESS: 4 rules found/);
});
