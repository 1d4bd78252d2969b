// `meshcar doctor` against a real mesh (CA, orders with its app, frontend calling orders), all
// processes: healthy, every check passes; then one broken thing at a time, each giving exactly
// one ✗ line that names what was expected and what was found, and exit 1.

import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { lookup } from 'node:dns/promises';
import { startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { execFileAsync, makeCaDir } from '../helpers/ca.js';
import { startEchoApp, type TestApp } from '../helpers/apps.js';
import { freePort } from '../helpers/process.js';
import { runDoctor, type CheckResult } from '../../src/doctor/index.js';
import { checkCa } from '../../src/doctor/ca.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { createLogger } from '../../src/logging.js';
import { formatResult } from '../../src/doctor/result.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const ORDERS = 'spiffe://mesh.local/svc/orders';

let ca: MeshCa;
let app: TestApp;
let orders: RunningSidecar;
let frontend: RunningSidecar;
let frontendYaml: string;
let ordersYaml: string;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startEchoApp();
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` }, namedPorts: true });
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: ORDERS }], namedPorts: true });
  [frontendYaml, ordersYaml] = await Promise.all([readFile(frontend.configFile, 'utf8'), readFile(orders.configFile, 'utf8')]);
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
  await app?.close();
});

let variants = 0;
/** A copy of a running sidecar's config with one thing changed. */
async function variant(yaml: string, from: string | RegExp, to: string): Promise<string> {
  const changed = yaml.replace(from, to);
  if (changed === yaml) throw new Error(`the config has no ${String(from)}`);
  const file = join(ca.dir, `doctor-${++variants}.yaml`);
  await writeFile(file, changed);
  return file;
}

/** Exactly one failed check, whose line matches `line`. */
function oneFailure(t: Tap.Test, results: CheckResult[], line: RegExp): void {
  const failed = results.filter((r) => r.status === 'fail').map(formatResult);
  t.equal(failed.length, 1, `one ✗:\n${results.map(formatResult).join('\n')}`);
  t.match(failed[0], line);
}

/** Offline SVID files for frontend, into their own folder. */
async function offlineSvid(out: string, ttl = '1h'): Promise<{ cert: string; key: string; bundle: string }> {
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', ca.caDir, '--service', 'frontend', '--out', out, '--ttl', ttl]);
  return { cert: join(out, 'svid.crt'), key: join(out, 'svid.key'), bundle: join(out, 'bundle.pem') };
}

const filesIdentity = (files: { cert: string; key: string; bundle: string }) => `identity:\n  files: {cert: ${files.cert}, key: ${files.key}, bundle: ${files.bundle}}\n`;
const IDENTITY_BLOCK = /identity:\n {2}ca:\n(?: {4}.*\n)+ {2}dir: .*\n {2}ttl: .*\n/;

t.test('a healthy mesh: every check passes', async (t) => {
  const results = await runDoctor(frontend.configFile);
  t.same(results.filter((r) => r.status !== 'ok').map(formatResult), [], 'all ✓');
  const names = results.map((r) => r.name);
  t.match(names, ['config', 'identity', 'join token', `ca ${ca.url}`, `upstream orders 127.0.0.1:${orders.inboundPort}`, `admin 127.0.0.1:${frontend.adminPort}`]);
  t.match(formatResult(results[1] as CheckResult), /^✓ identity: spiffe:\/\/mesh\.local\/svc\/frontend, serial [0-9a-f]+, valid until .* left, \d+% of its lifetime\); chains to the CA's current bundle; renewal due between/);
  t.match(formatResult(results.find((r) => r.name.startsWith('upstream')) as CheckResult), /^✓ upstream orders .*: spiffe:\/\/mesh\.local\/svc\/orders, mutual TLS TLSv1\.3, ALPN h2, PING \d+\.\d+ ms$/);
  const inbound = await runDoctor(orders.configFile);
  t.same(inbound.filter((r) => r.status !== 'ok').map(formatResult), [], 'the inbound side too');
  t.match(formatResult(inbound.find((r) => r.name.startsWith('app')) as CheckResult), /^✓ app http:\/\/127\.0\.0\.1:\d+: reachable, speaks HTTP\/1\.1/);

  const cli = await execFileAsync(process.execPath, [CLI, 'doctor', '--config', frontend.configFile]);
  t.match(cli.stdout, /^✓ config: .*\n[\s\S]*all checks passed\n$/, 'meshcar doctor exits 0 and says so');
});

// admin.listen naming the host by a name the sidecar's browser guard is not told of
// (admin.hosts): doctor's probes carried that name as their Host, got the guard's 403, and
// called the healthy sidecar "something other than a meshcar sidecar". This machine's own
// name, when it resolves to a loopback address (it does on the test hosts: /etc/hosts).
t.test('admin.listen by a host name: the running sidecar is found, not taken for another program', async (t) => {
  const name = hostname();
  const addresses = await lookup(name, { all: true }).catch(() => []);
  if (!addresses.some((a) => a.address === '127.0.0.1')) return t.skip(`this host's name ${name} does not resolve to 127.0.0.1`);
  const file = await variant(ordersYaml, `listen: 127.0.0.1:${orders.adminPort}`, `listen: ${name}:${orders.adminPort}`);
  const admin = (await runDoctor(file)).find((r) => r.name.startsWith('admin'));
  t.match(admin, { status: 'ok', name: `admin ${name}:${orders.adminPort}` }, formatResult(admin as CheckResult));
});

t.test('a config given as a pipe (/dev/stdin) is read once: the checks run on it', async (t) => {
  // it was read twice: the second read found the pipe drained and waited 10 s for nothing. A
  // shell's pipe, as a user's `cat ... |` (Node's own child stdin is a socket, which /dev/stdin cannot open)
  const child = execFile('sh', ['-c', 'cat "$1" | "$2" "$3" doctor --config /dev/stdin', 'sh', frontend.configFile, process.execPath, CLI]);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 0, stdout);
  t.match(stdout, /^✓ config: \/dev\/stdin: valid sidecar configuration for spiffe:\/\/mesh\.local\/svc\/frontend\n[\s\S]*all checks passed\n$/);
});

t.test('an expired SVID', async (t) => {
  const files = await offlineSvid(join(ca.dir, 'doctor-expired'), '1s');
  const notAfter = Date.parse(new X509Certificate(await readFile(files.cert)).validTo);
  while (Date.now() <= notAfter) await sleep(Math.max(10, notAfter - Date.now() + 5));
  oneFailure(t, await runDoctor(await variant(frontendYaml, IDENTITY_BLOCK, filesIdentity(files))), /^✗ identity: .*svid\.crt: .*expired at \S+ — fix: whoever writes identity\.files must renew it$/);
});

t.test('a key that does not match the certificate', async (t) => {
  const [a, b] = await Promise.all([offlineSvid(join(ca.dir, 'doctor-a')), offlineSvid(join(ca.dir, 'doctor-b'))]);
  // the line names the key file first (it named the certificate file alone)
  oneFailure(t, await runDoctor(await variant(frontendYaml, IDENTITY_BLOCK, filesIdentity({ ...a, key: b.key }))), new RegExp(`^✗ identity: ${b.key.replace(/[.]/g, '\\.')} \\(with ${a.cert.replace(/[.]/g, '\\.')}\\): .*the private key does not match the certificate .* — fix: the key and certificate come from different issuances`));
});

t.test('a CA bundle from another CA', async (t) => {
  const other = await makeCaDir();
  oneFailure(t, await runDoctor(await variant(frontendYaml, `bundle: ${ca.bundlePath}`, `bundle: ${join(other, 'bundle.pem')}`)), new RegExp(`^✗ ca ${ca.url.replace(/[.]/g, '\\.')}: the CA's certificate does not chain to identity\\.ca\\.bundle .*: its certificate is not from a CA in our bundle`));
});

t.test('the CA is down', async (t) => {
  const closed = await freePort();
  oneFailure(t, await runDoctor(await variant(frontendYaml, `url: ${ca.url}`, `url: https://127.0.0.1:${closed}`)), new RegExp(`^✗ ca https://127\\.0\\.0\\.1:${closed}: unreachable: nothing listening \\(ECONNREFUSED\\) — fix: start the CA`));
});

t.test('an upstream with the wrong identity', async (t) => {
  oneFailure(t, await runDoctor(await variant(frontendYaml, `identity: ${ORDERS}`, 'identity: spiffe://mesh.local/svc/payments')), new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${orders.inboundPort}: peer is spiffe://mesh\\.local/svc/orders, expected spiffe://mesh\\.local/svc/payments`));
});

t.test('an upstream endpoint nothing listens on', async (t) => {
  const closed = await freePort();
  oneFailure(t, await runDoctor(await variant(frontendYaml, `127.0.0.1:${orders.inboundPort}`, `127.0.0.1:${closed}`)), new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${closed}: nothing listening \\(ECONNREFUSED\\) — fix: start the orders sidecar`));
});

t.test('the app is not listening', async (t) => {
  const closed = await freePort();
  oneFailure(t, await runDoctor(await variant(ordersYaml, `app: http://127.0.0.1:${app.port}`, `app: http://127.0.0.1:${closed}`)), new RegExp(`^✗ app http://127\\.0\\.0\\.1:${closed}: not reachable: nothing listening \\(ECONNREFUSED\\) — fix: start the app`));
});

t.test('a bad join token, needed because no SVID is on disk yet', async (t) => {
  const garbage = join(ca.dir, 'doctor-garbage.token');
  await writeFile(garbage, 'not-a-token\n');
  const file = await variant(frontendYaml, /token: .*\n {2}dir: .*\n/, `token: ${garbage}\n  dir: ${join(ca.dir, 'doctor-empty-identity')}\n`);
  const results = await runDoctor(file);
  oneFailure(t, results, /^✗ join token: .*doctor-garbage\.token: it does not hold a join token .* — fix: write a new token with meshcar ca token --dir <CA dir> --service frontend --out \S+doctor-garbage\.token$/);
  t.match(formatResult(results[1] as CheckResult), /^- identity: no SVID in .* yet/, 'the identity check says what will happen instead');

  // through the command line: exit 1, and --json for scripts
  const cli = await new Promise<{ code: number; stdout: string }>((resolve) => execFile(process.execPath, [CLI, 'doctor', '--config', file, '--json'], (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout })));
  t.equal(cli.code, 1);
  const json = JSON.parse(cli.stdout) as { ok: boolean; checks: CheckResult[] };
  t.equal(json.ok, false);
  t.match(json.checks.find((c) => c.status === 'fail'), { name: 'join token', status: 'fail', fix: /meshcar ca token/ });
});

t.test('a CA config: one failure, with the fix in --json too', async (t) => {
  const file = join(ca.dir, 'doctor-ca.yaml');
  await writeFile(file, `trustDomain: mesh.local\ndir: ${join(ca.dir, 'ca')}\nmaxTtl: 1h\n`);
  const cli = await new Promise<{ code: number; stdout: string }>((resolve) => execFile(process.execPath, [CLI, 'doctor', '--config', file, '--json'], (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout })));
  t.equal(cli.code, 1);
  const json = JSON.parse(cli.stdout) as { ok: boolean; checks: CheckResult[] };
  t.same(json.checks.map((c) => [c.name, c.status]), [['config', 'fail']], 'the config check alone, failed');
  t.match(json.checks[0], { message: /doctor-ca\.yaml is a CA config; doctor checks a sidecar's config$/, fix: /^run doctor on the sidecar's config; meshcar check --config \S+doctor-ca\.yaml checks this one$/ });
});

t.test('the app speaks the protocol inbound.app names', async (t) => {
  const { createServer: createH2c } = await import('node:http2');
  const h2c = createH2c((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => h2c.close());
  const h2cPort = (h2c.address() as { port: number }).port;
  const asH2c = await variant(ordersYaml, `app: http://127.0.0.1:${app.port}`, `app: h2c://127.0.0.1:${h2cPort}`);
  t.match(formatResult((await runDoctor(asH2c)).find((r) => r.name.startsWith('app')) as CheckResult), /^✓ app h2c:\/\/127\.0\.0\.1:\d+: reachable, speaks HTTP\/2 \(h2c\), PING/);
  const wrong = await variant(ordersYaml, `app: http://127.0.0.1:${app.port}`, `app: h2c://127.0.0.1:${app.port}`);
  oneFailure(t, await runDoctor(wrong), /^✗ app h2c:\/\/127\.0\.0\.1:\d+: reachable, but it does not speak HTTP\/2 with prior knowledge \(h2c\), it speaks HTTP\/1\.1 \(GET \/ → 404\): .* — fix: use http:\/\/ in inbound\.app/);
});

t.test('an SVID whose root a rotation retired: trusted by the bundle on disk, not by the CA', async (t) => {
  // a CA of its own: the rotation must not disturb the mesh the other checks use
  const rotated = await startMeshCa(t.testdir());
  t.teardown(() => rotated.stop());
  const identityDir = join(rotated.dir, 'frontend-identity');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', rotated.caDir, '--service', 'frontend', '--out', identityDir]);
  const token = await rotated.tokenFile('frontend');
  const yaml = frontendYaml.replace(IDENTITY_BLOCK, `identity:\n  ca:\n    url: ${rotated.url}\n    bundle: ${rotated.bundlePath}\n    token: ${token}\n  dir: ${identityDir}\n`);
  const file = join(rotated.dir, 'frontend.yaml');
  await writeFile(file, yaml);
  const before = await runDoctor(file);
  t.match(formatResult(before.find((r) => r.name === 'identity') as CheckResult), /^✓ identity: .*; chains to the CA's current bundle/);
  t.match(formatResult(before.find((r) => r.name === 'join token') as CheckResult), /^✓ join token: .*not needed while the SVID on disk is valid; its signing key is checked by the CA only when the token is used\)$/);

  for (const step of [['add'], ['activate', '--force'], ['retire', '--force']]) {
    await execFileAsync(process.execPath, [CLI, 'ca', 'root', step[0] as string, '--dir', rotated.caDir, ...step.slice(1)]);
  }
  // the CA reloads its folder at its next request and then renews its own certificate under the
  // new root: ask it for its bundle until it serves one the retired root is not needed for (the
  // first answer, the new bundle over a connection still under the retired root, is refused)
  const config = await loadSidecarConfig(file);
  const client = new CaClient({ url: rotated.url, trustDomain: 'mesh.local', bundlePem: await readFile(rotated.bundlePath, 'utf8'), logger: createLogger('silent') });
  const oldBundle = await readFile(join(identityDir, 'bundle.pem'), 'utf8');
  await waitFor(async () => {
    if ((await client.fetchBundle(oldBundle).catch(() => undefined)) === undefined) return false;
    return (await checkCa(config))?.status === 'ok';
  }, 10_000, 'the CA serves a certificate under the new root');
  const after = await runDoctor(file);
  oneFailure(t, after, /^✗ identity: .*svid\.crt chains to .*bundle\.pem but no longer to the CA's current bundle \(GET \/v1\/bundle; a root rotation retired its root\): .* — fix: the sidecar replaces it at start with the join token/);
  t.match(formatResult(after.find((r) => r.name === 'join token') as CheckResult), /^✓ join token: .* \(its signing key is checked by the CA only when the token is used\)$/, 'the token is now needed, and the line says what was not checked');
});
