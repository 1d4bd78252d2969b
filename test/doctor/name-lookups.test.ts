// doctor resolves host names in a child process it can walk away from (src/doctor/child-lookups.ts:
// a hung resolver is bounded by --timeout; test/outbound/dns-hung-resolver.test.ts). A first
// version started a child per name and read its stdout as the answer: a NODE_OPTIONS preload
// that prints a line (dotenv, an APM agent) or `--experimental-default-type=module` made every
// lookup fail (the app at `localhost` reported unreachable), and 60 names started 60 processes
// at once whose start-up ran out a 1 s bound (names that resolve reported "did not resolve").
// The real CLI, names getaddrinfo answers without DNS: `localhost` from /etc/hosts, and
// `0x7f0000NN`, a host name by meshcar's rules that getaddrinfo reads as 127.0.0.NN.

import t from 'tap';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makePki } from '../helpers/pki.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** A sidecar config with SVID files, `app`, and `upstreams` lines (under outbound.upstreams). */
async function config(t: Tap.Test, app: string, upstreams: string[] = []): Promise<string> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem, 'banner.cjs': "console.log('[preload] injecting env (0) from .env')\n" });
  await chmod(join(dir, 'svid.key'), 0o600);
  const file = join(dir, 'orders.yaml');
  await writeFile(
    file,
    `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
      `inbound: {listen: "127.0.0.1:0", app: "${app}"}\n` +
      (upstreams.length > 0 ? `outbound:\n  listen: "127.0.0.1:0"\n  upstreams:\n${upstreams.join('\n')}\n` : '') +
      'admin: {listen: "127.0.0.1:1"}\n',
  );
  return file;
}

function doctor(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => execFile(process.execPath, [CLI, 'doctor', ...args], { timeout: 60_000, env }, (_err, stdout) => resolve({ stdout, ms: performance.now() - started })));
}

t.test('a NODE_OPTIONS that prints on start, or makes -e code ESM, leaves the lookups alone', async (t) => {
  const app = http.createServer((_req, res) => res.end('ok'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const file = await config(t, `http://localhost:${(app.address() as AddressInfo).port}`);
  const banner = join(file, '..', 'banner.cjs');
  for (const options of ['', `-r ${banner}`, '--experimental-default-type=module']) {
    const { stdout } = await doctor(['--config', file], { ...process.env, NODE_OPTIONS: options });
    t.match(stdout, /✓ app http:\/\/localhost:\d+: reachable/, `NODE_OPTIONS="${options}": the app at localhost is reachable`);
  }
});

t.test('60 names, --timeout 1s: each resolves, and its dial says so', async (t) => {
  const upstreams = Array.from({ length: 60 }, (_, i) => `    u${i}: {endpoints: ["dns:0x7f0000${(i + 2).toString(16).padStart(2, '0')}:1"], identity: "spiffe://mesh.local/svc/u${i}"}`);
  const file = await config(t, 'http://127.0.0.1:1', upstreams);
  const { stdout, ms } = await doctor(['--config', file, '--timeout', '1s']);
  const lines = stdout.split('\n').filter((line) => line.includes(' upstream u'));
  t.equal(lines.length, 60, 'a line for each');
  t.same(lines.filter((line) => !/nothing listening \(ECONNREFUSED\)/.test(line)), [], `each resolved and was refused (in ${Math.round(ms)} ms)`);
});
