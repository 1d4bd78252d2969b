// Interop with tools from outside meshcar, straight at an inbound sidecar: curl --http2 with a
// certificate from our CA succeeds; openssl s_client without a certificate, or with one from
// another CA, is refused; a valid certificate the policy does not allow gets 403; and an
// upstream presenting the wrong identity gets 502.

import t from 'tap';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { startSidecar, metricValue, httpGet, type RunningSidecar } from '../helpers/mesh.js';
import { execFileAsync } from '../helpers/ca.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
let orders: RunningSidecar;

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    // the peer may refuse and openssl exit before it reads its input: EPIPE is not the test's business
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

t.before(async () => {
  orders = await startSidecar(mesh.ca, {
    service: 'orders',
    inbound: {
      app: `http://127.0.0.1:${mesh.app.port}`,
      authorize: ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]', '      paths: [/headers]'].join('\n'),
    },
  });
});
t.teardown(() => orders?.stop());

t.test('curl --http2 with a certificate from our CA', async (t) => {
  const svid = await mesh.ca.issue('frontend');
  const res = await run('curl', ['-sS', '--http2', '-k', '--cert', join(svid.dir, 'svid.crt'), '--key', join(svid.dir, 'svid.key'), '-w', '\n%{http_code} %{http_version}', `https://127.0.0.1:${orders.inboundPort}/headers`]);
  t.equal(res.code, 0, res.out);
  t.match(res.out, /\n200 2$/, 'HTTP/2 over mTLS, 200');
  t.match(res.out, /URI=spiffe:\/\/mesh\.local\/svc\/frontend/);
  // and the server's own certificate verifies against the bundle (curl checks the chain; the
  // name is an IP the SVID does not carry, so -k skips only the host-name match)
  const verified = await run('openssl', ['s_client', '-connect', `127.0.0.1:${orders.inboundPort}`, '-CAfile', mesh.ca.bundlePath, '-cert', join(svid.dir, 'svid.crt'), '-key', join(svid.dir, 'svid.key'), '-verify_return_error', '-brief'], 'Q\n');
  t.match(verified.out, /Verification: OK/, verified.out);
  t.match(verified.out, /TLSv1\.3/, 'TLS 1.3 negotiated');
});

t.test('a valid certificate the policy does not allow gets 403', async (t) => {
  const svid = await mesh.ca.issue('intruder');
  const res = await run('curl', ['-sS', '--http2', '-k', '--cert', join(svid.dir, 'svid.crt'), '--key', join(svid.dir, 'svid.key'), '-D', '-', `https://127.0.0.1:${orders.inboundPort}/headers`]);
  t.match(res.out, /^HTTP\/2 403/m);
  t.match(res.out, /x-meshcar-error: forbidden/);
  t.match(res.out, /"error":"forbidden"/);
});

t.test('openssl s_client without a certificate is refused', async (t) => {
  const res = await run('openssl', ['s_client', '-connect', `127.0.0.1:${orders.inboundPort}`, '-CAfile', mesh.ca.bundlePath, '-brief', '-ign_eof'], 'GET /headers HTTP/1.1\r\nHost: orders\r\n\r\n');
  t.notMatch(res.out, /HTTP\/1\.1 200/, 'no answer from the app');
  t.match(res.out, /alert|certificate required|error/i, res.out);
});

t.test('a certificate from another CA is refused', async (t) => {
  const dir = t.testdir();
  const other = join(dir, 'other');
  await execFileAsync(process.execPath, ['dist/cli.js', 'ca', 'init', '--dir', other, '--trust-domain', 'mesh.local']);
  await execFileAsync(process.execPath, ['dist/cli.js', 'ca', 'issue', '--dir', other, '--service', 'frontend', '--out', join(dir, 'svid')]);
  const res = await run('curl', ['-sS', '-k', '--cert', join(dir, 'svid', 'svid.crt'), '--key', join(dir, 'svid', 'svid.key'), `https://127.0.0.1:${orders.inboundPort}/headers`]);
  t.not(res.code, 0, 'curl fails');
  t.notMatch(res.out, /x-forwarded-client-cert/);
  const metrics = (await orders.admin('/metrics')).body;
  t.ok((metricValue(metrics, 'meshcar_tls_handshake_failures_total{direction="inbound",reason="unknown_ca"}') ?? 0) >= 1, 'counted as unknown_ca');
  t.ok((metricValue(metrics, 'meshcar_tls_handshake_failures_total{direction="inbound",reason="no_client_cert"}') ?? 0) >= 1, 'the no-certificate attempt counted too');
});

t.test('an upstream presenting the wrong identity gets 502', async (t) => {
  // the frontend expects "payments" at the orders sidecar's address
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'payments', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/payments' }] });
  t.teardown(() => frontend.stop('SIGKILL'));
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await httpGet(frontend.outboundPort, '/headers', { host: 'payments' });
    t.equal(res.status, 502, `attempt ${attempt + 1}`);
    t.equal(JSON.parse(res.body).error, 'upstream_identity_mismatch');
    t.equal(res.headers['x-meshcar-error'], 'upstream_identity_mismatch');
  }
});
