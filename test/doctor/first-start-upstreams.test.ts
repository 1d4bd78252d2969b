// `meshcar doctor` before a sidecar's first start (identity.dir empty, the join token will get
// its SVID), through the real CLI: its upstream endpoints are still dialled, without a client
// certificate, so a wrong endpoint shows now. They were all `- not checked: no usable SVID`
// and doctor said "all checks passed", exit 0, for an endpoint serving another service or
// nothing at all. A real orders sidecar from our CA is the endpoint.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import { freePort } from '../helpers/process.js';
import type { CheckResult } from '../../src/doctor/index.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const mesh = meshFixture(t);
let orders: RunningSidecar;
t.before(async () => {
  orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
});
t.teardown(() => orders?.stop());

let configs = 0;
/** doctor --json on a frontend that never ran (empty identity.dir), with one upstream `orders` at `endpoint` expecting `identity`. */
async function doctor(endpoint: string, identity: string): Promise<{ code: number; checks: CheckResult[] }> {
  const n = ++configs;
  const file = join(mesh.ca.dir, `first-start-${n}.yaml`);
  const yaml = ['service: frontend', 'trustDomain: mesh.local', 'identity:', '  ca:', `    url: ${mesh.ca.url}`, `    bundle: ${mesh.ca.bundlePath}`, `    token: ${await mesh.ca.tokenFile('frontend')}`, `  dir: ${join(mesh.ca.dir, `first-start-id-${n}`)}`, 'outbound:', '  listen: 127.0.0.1:0', '  upstreams:', '    orders:', `      endpoints: [${endpoint}]`, `      identity: ${identity}`, 'admin:', '  listen: 127.0.0.1:0', ''];
  await writeFile(file, yaml.join('\n'));
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file, '--json'], { timeout: 20_000 }, (err, stdout) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, checks: (JSON.parse(stdout) as { checks: CheckResult[] }).checks })),
  );
}

const ORDERS = 'spiffe://mesh.local/svc/orders';

t.test('the right endpoint: ✓ with what was seen, and that mutual TLS waits for the SVID', async (t) => {
  const { code, checks } = await doctor(`127.0.0.1:${orders.inboundPort}`, ORDERS);
  t.equal(code, 0, JSON.stringify(checks));
  t.match(checks.find((c) => c.name === 'identity'), { status: 'skip', message: /no SVID in .* yet/ });
  t.match(checks.find((c) => c.name.startsWith('upstream orders')), { status: 'ok', message: /^spiffe:\/\/mesh\.local\/svc\/orders, TLS TLSv1\.3, ALPN h2; its side only: no SVID yet/ });
});

t.test('an endpoint serving another service: ✗ before the first start', async (t) => {
  const { code, checks } = await doctor(`127.0.0.1:${orders.inboundPort}`, 'spiffe://mesh.local/svc/payments');
  t.equal(code, 1);
  t.match(checks.find((c) => c.name.startsWith('upstream orders')), { status: 'fail', message: `peer is ${ORDERS}, expected spiffe://mesh.local/svc/payments`, fix: /correct outbound\.upstreams\.orders\.endpoints or \.identity/ });
});

t.test('an endpoint nothing listens on, and one that is a TLS server without h2 (the CA)', async (t) => {
  const closed = await freePort();
  const refused = await doctor(`127.0.0.1:${closed}`, ORDERS);
  t.equal(refused.code, 1);
  t.match(refused.checks.find((c) => c.name.startsWith('upstream orders')), { status: 'fail', message: 'nothing listening (ECONNREFUSED)', fix: /start the orders sidecar/ });
  const ca = await doctor(new URL(mesh.ca.url).host, ORDERS);
  t.equal(ca.code, 1);
  t.match(ca.checks.find((c) => c.name.startsWith('upstream orders')), { status: 'fail', message: /^a TLS server that does not speak HTTP\/2 \(no ALPN h2\): not a meshcar inbound listener \(ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL\)$/ });
});
