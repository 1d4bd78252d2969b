// /config shows the running config in YAML key names with every default: written back out as
// YAML, it loads to the very same config, and a minimal file shows its defaults spelled out.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadSidecarConfig, type SidecarConfig } from '../../src/config/sidecar-config.js';
import { effectiveYamlView } from '../../src/config/effective-yaml.js';
import { DEFAULT_INBOUND_LIMITS } from '../../src/config/inbound-config.js';

const FULL = `service: orders
trustDomain: mesh.local
identity:
  ca: {url: "https://127.0.0.1:8443", bundle: /tmp/bundle.pem, token: /tmp/orders.token, bundleRefresh: 90s}
  dir: /tmp/orders
  ttl: 2h
  renewal: {from: 0.4, to: 0.6}
inbound:
  listen: 0.0.0.0:15443
  app: h2c://127.0.0.1:50051
  timeout: 3s
  routes: [{path: /reports/*, timeout: 60s}]
  authorize:
    - from: [spiffe://mesh.local/svc/frontend]
      methods: [GET]
      paths: [/orders/*]
  rateLimit: {perIdentity: {rate: 100/m, burst: 200}, total: {rate: 7/h, burst: 3}}
  limits: {maxConcurrentStreams: 100}
  openapi: {spec: /tmp/orders.openapi.yaml, mode: enforce, maxBodySize: 64KiB}
outbound:
  listen: 127.0.0.1:15001
  upstreams:
    payments:
      endpoints: [127.0.0.1:16443, "dns:payments.local:15443"]
      identity: spiffe://mesh.local/svc/payments
      timeout: 2s
      routes: ["/charges/{id}"]
      retries: {attempts: 1, backoff: {base: 50ms}}
      circuitBreaker: {maxRequests: 10}
      openapi: {spec: /tmp/payments.openapi.yaml}
admin: {listen: 127.0.0.1:15000, hosts: [meshcar-admin.local]}
log: {level: debug, access: false}
drainTimeout: 3s
`;

/** The view as a config file, as it is: absent settings are already left out. */
function asYaml(view: Record<string, unknown>): string {
  return stringify(view);
}

function comparable(config: SidecarConfig): unknown {
  return effectiveYamlView(config);
}

t.test('the view loads back to the same config', async (t) => {
  const dir = t.testdir({ 'full.yaml': FULL });
  const loaded = await loadSidecarConfig(join(dir, 'full.yaml'));
  const view = effectiveYamlView(loaded);
  t.notMatch(JSON.stringify(view), /Ms"|Bytes"|perSecond|"name"/, 'no internal key names');
  await writeFile(join(dir, 'again.yaml'), asYaml(view));
  const reloaded = await loadSidecarConfig(join(dir, 'again.yaml'));
  t.same(comparable(reloaded), comparable(loaded), 'same config');
  t.same(reloaded.inbound, loaded.inbound === undefined ? undefined : { ...loaded.inbound, idleTimeoutMs: 300_000, tunnelIdleTimeoutMs: 3_600_000, routes: loaded.inbound.routes, limits: { ...DEFAULT_INBOUND_LIMITS, maxConcurrentStreams: 100, maxSessionAgeMs: 600_000 } }, 'defaults written out');
});

t.test('a minimal config shows its defaults', async (t) => {
  const dir = t.testdir({ 'min.yaml': 'service: a\ntrustDomain: mesh.local\nidentity: {files: {cert: /c, key: /k, bundle: /b}}\noutbound: {listen: 127.0.0.1:15001, upstreams: {b: {endpoints: ["127.0.0.1:1"], identity: spiffe://mesh.local/svc/b}}}\n' });
  const view = effectiveYamlView(await loadSidecarConfig(join(dir, 'min.yaml'))) as Record<string, Record<string, unknown>>;
  t.match(view, {
    identity: { ttl: '1d', renewal: { from: 0.5, to: 0.7 } },
    outbound: {
      listen: '127.0.0.1:15001',
      dnsRefresh: '5s',
      upstreams: { b: { timeout: '15s', idleTimeout: '5m', tunnelIdleTimeout: '1h', retries: { attempts: 2, budget: { ratio: 0.2, minPerSecond: 10 }, backoff: { base: '25ms', max: '1s' }, bufferLimit: '64KiB' }, balancer: { decay: '10s' }, circuitBreaker: { maxRequests: 1024, maxPending: 1024 }, outlierDetection: { consecutiveFailures: 5, baseEjection: '30s', maxEjection: '5m', maxEjectionPercent: 50 } } },
    },
    admin: { listen: '127.0.0.1:15000' },
    log: { level: 'info', access: false },
    metrics: { requests: true },
    drainTimeout: '10s',
    http2: { codec: 'meshcar' },
  });
  // left out, not null or []: check refuses both (the view must paste back into a file)
  t.notOk('inbound' in view, 'no inbound');
  t.notOk('hosts' in (view.admin as Record<string, unknown>), 'no admin.hosts');
  t.notOk('dir' in (view.identity as Record<string, unknown>), 'no identity.dir with identity.files');
});
