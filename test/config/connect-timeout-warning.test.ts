// An upstream whose connectTimeout (default 5 s) is not below its timeout: a dial toward an
// endpoint that never finishes its handshake then takes the whole timeout, and the request gets
// 504 while a healthy endpoint exists. The file stays valid: `meshcar check` passes it with one
// warning line per such upstream (the upstream, both values, the file, what to do), and the
// sidecar's start and each reload log the same line once.

import t from 'tap';
import { makePki, type TestPki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { check, postReload, warningsIn, writeOrdersConfig } from '../helpers/config-warning-runs.js';

/** A sidecar config for `orders` with an outbound side holding `upstreams` (YAML lines under `upstreams:`). */
function writeConfig(dir: string, pki: TestPki, upstreams: string[]): Promise<string> {
  return writeOrdersConfig(dir, pki, ['outbound:', '  listen: "127.0.0.1:0"', '  upstreams:', ...upstreams.map((line) => `    ${line}`)]);
}

const upstream = (name: string, keys: string) => `${name}: {endpoints: ["127.0.0.1:1"], identity: "spiffe://mesh.local/svc/${name}"${keys}}`;

t.test('check passes the file with one warning line per upstream whose connectTimeout is not below its timeout', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const file = await writeConfig(dir, pki, [
    upstream('payments', ', timeout: 3s'), // the default 5 s dial bound
    upstream('billing', ', timeout: 2s, connectTimeout: 2s'), // equal: no time left for another endpoint
    upstream('quick', ', timeout: 3s, connectTimeout: 300ms'), // well below: fine
    upstream('streams', ', timeout: 0'), // no answer bound: the dial keeps its own
    upstream('plain', ''), // the defaults: 5 s below 15 s
  ]);
  const result = await check(file);
  t.equal(result.status, 0, 'a warning does not fail the check');
  t.match(result.stdout, `${file}: valid sidecar configuration`);
  t.equal(result.stderr.length, 2, `one line each for payments and billing: ${result.stderr.join('\n')}`);
  t.equal(
    result.stderr[0],
    `meshcar: warning: ${file}: outbound.upstreams.payments: connectTimeout 5s (the default) is not below timeout 3s: a dial to an endpoint that never finishes its handshake can take the whole timeout, and the request gets 504 while a healthy endpoint exists; lower connectTimeout well below timeout (say 600ms)`,
  );
  t.match(result.stderr[1], `meshcar: warning: ${file}: outbound.upstreams.billing: connectTimeout 2s is not below timeout 2s: `);
  t.match(result.stderr[1], /lower connectTimeout well below timeout \(say 400ms\)$/);
});

t.test('check says nothing more for a file whose upstreams dial well within their timeouts', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeConfig(t.testdir(), pki, [upstream('payments', ', timeout: 3s, connectTimeout: 1s'), upstream('plain', '')]);
  const result = await check(file);
  t.equal(result.status, 0);
  t.same(result.stderr, []);
});

t.test('the sidecar logs the warning once at start, and again at a reload whose file still has it', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const file = await writeConfig(dir, pki, [upstream('payments', ', timeout: 3s')]);
  const proc = startMeshcar(['run', '--config', file]);
  t.teardown(() => proc.stop());
  await proc.waitFor((line) => line.msg === 'sidecar ready', 30_000);
  const atStart = warningsIn(proc, 0);
  t.equal(atStart.length, 1, 'one line at start');
  t.match(atStart[0], `${file}: outbound.upstreams.payments: connectTimeout 5s (the default) is not below timeout 3s: `);
  const admin = proc.lines.find((line) => line.msg === 'admin listening')?.address as { port: number };

  // the reloaded file fixes payments and brings in an upstream with the same problem
  await writeConfig(dir, pki, [upstream('payments', ', timeout: 3s, connectTimeout: 500ms'), upstream('billing', ', timeout: 1s, connectTimeout: 1s')]);
  const before = proc.lines.length;
  t.equal(await postReload(admin.port), 200);
  await proc.waitFor((line) => proc.lines.indexOf(line) >= before && line.msg === 'config reloaded');
  const atReload = warningsIn(proc, before);
  t.equal(atReload.length, 1, `billing alone: ${atReload.join('\n')}`);
  t.match(atReload[0], `${file}: outbound.upstreams.billing: connectTimeout 1s is not below timeout 1s: `);
});
