// `meshcar ca serve` as an operator runs it: a child process with a YAML config, verified by
// curl against the bundle by host name, issuing to an openssl-made CSR, stopping on SIGTERM.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileAsync, openssl } from '../helpers/ca.js';
import { startMeshcar } from '../helpers/process.js';

const CLI = 'dist/cli.js';

t.test('ca serve: curl verifies it by host name, openssl CSRs are signed, SIGTERM stops it', async (t) => {
  const dir = t.testdir();
  const caDir = join(dir, 'ca');
  await execFileAsync(process.execPath, [CLI, 'ca', 'init', '--dir', caDir, '--trust-domain', 'mesh.local']);
  const config = join(dir, 'ca.yaml');
  // port 0: the CA binds a free port and says which in its 'CA server listening' line
  await writeFile(config, `trustDomain: mesh.local\ndir: ${caDir}\nlisten: 127.0.0.1:0\nserverNames: [localhost, 127.0.0.1]\nmaxTtl: 1h\n`);
  const ca = startMeshcar(['ca', 'serve', '--config', config]);
  t.teardown(() => ca.stop('SIGKILL'));
  const listening = await ca.waitFor((l) => l.msg === 'CA server listening');
  const port = Number(new URL(String(listening.url)).port);
  t.ok(port > 0, `bound port ${port}`);
  const bundlePath = join(caDir, 'bundle.pem');
  const bundle = await readFile(bundlePath, 'utf8');

  const viaName = await execFileAsync('curl', ['-sS', '--fail', '--cacert', bundlePath, `https://localhost:${port}/v1/bundle`]);
  t.equal(viaName.stdout, bundle, 'curl verifies the CA server certificate by DNS name');
  const viaIp = await execFileAsync('curl', ['-sS', '--fail', '--cacert', bundlePath, `https://127.0.0.1:${port}/healthz`]);
  t.match(viaIp.stdout, /"ok"/, 'and by IP SAN');

  const token = (await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', caDir, '--service', 'orders'])).stdout.trim();
  const keyFile = join(dir, 'k.pem');
  await execFileAsync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  const csr = await openssl(['req', '-new', '-key', keyFile, '-subj', '/O=x', '-addext', 'subjectAltName=URI:spiffe://mesh.local/svc/orders']);
  const signed = await execFileAsync('curl', ['-sS', '--cacert', bundlePath, '-H', `Authorization: Bearer ${token}`, '-H', 'content-type: application/json', '--data-binary', JSON.stringify({ csr, ttl: '2h' }), `https://localhost:${port}/v1/sign`]);
  const body = JSON.parse(signed.stdout) as Record<string, string>;
  t.equal(body.spiffeId, 'spiffe://mesh.local/svc/orders');
  const lifetime = Date.parse(String(body.notAfter)) - Date.now();
  t.ok(lifetime <= 3_600_000, 'maxTtl from the YAML caps the lifetime');
  const chainFile = join(dir, 'chain.pem');
  await writeFile(chainFile, String(body.chain));
  const verified = await execFileAsync('openssl', ['verify', '-CAfile', bundlePath, '-untrusted', chainFile, '-purpose', 'sslclient', chainFile]);
  t.match(verified.stdout, /OK/);

  const denied = await execFileAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', bundlePath, '-H', 'content-type: application/json', '--data-binary', '{}', `https://localhost:${port}/v1/sign`]);
  t.equal(denied.stdout, '401');
  // log lines cross a pipe: wait for them rather than assume they are there already
  t.ok(await ca.waitFor((l) => l.component === 'ca-audit' && l.event === 'ca.issue' && l.spiffeId === 'spiffe://mesh.local/svc/orders', 5000), 'issuance audited on stdout');
  t.ok(await ca.waitFor((l) => l.component === 'ca-audit' && l.event === 'ca.deny' && l.reason === 'unauthenticated', 5000), 'denial audited');
  t.notOk(JSON.stringify(ca.lines).includes(token), 'the token never reaches the log');

  t.equal(await ca.stop('SIGTERM'), 0, 'exits 0 on SIGTERM');
});

t.test('ca serve with a broken config: every error, file:line, exit 1', async (t) => {
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: Mesh Local\ndir: 5\nlisten: nowhere\n' });
  const ca = startMeshcar(['ca', 'serve', '--config', join(dir, 'ca.yaml')]);
  t.equal(await ca.exited(), 1);
  t.ok(ca.stderr.length >= 2, ca.stderr.join('\n'));
  t.match(ca.stderr.join('\n'), /ca\.yaml:1:\d+: trustDomain/);
  t.match(ca.stderr.join('\n'), /ca\.yaml:3:\d+: listen/);
});

t.test('ca serve without a CA on disk says how to make one', async (t) => {
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: nothing-here\nlisten: 127.0.0.1:0\n' });
  const ca = startMeshcar(['ca', 'serve', '--config', join(dir, 'ca.yaml')], { cwd: dir });
  t.equal(await ca.exited(), 1);
  t.equal(ca.stderr.length, 1, ca.stderr.join('\n'));
  t.match(ca.stderr[0], /nothing-here: does not exist; make the CA first: meshcar ca init --dir \S*nothing-here --trust-domain mesh\.local$/);
});
