// The README's "Live reload" section names the keys that change live and those that need a
// restart. This reads both lists out of the README and asks the reload planner (planReload)
// about a real change of each key, so the documentation and the code cannot drift apart.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { IDENTITY_KEYS, LIVE_RELOAD_KEYS, planReload } from '../../src/config/reload-plan.js';

const README = new URL('../../README.md', import.meta.url);

/** A config as plain data, changed freely by the probes below. */
type Yaml = Record<string, any>;

const BASE: Yaml = {
  service: 'orders',
  trustDomain: 'mesh.local',
  identity: { ca: { url: 'https://127.0.0.1:8443', bundle: '/tmp/bundle.pem', token: '/tmp/orders.token' }, dir: '/tmp/orders', ttl: '24h' },
  inbound: { listen: '127.0.0.1:15443', app: 'http://127.0.0.1:8080', timeout: '15s' },
  outbound: { listen: '127.0.0.1:15001', upstreams: { payments: { endpoints: ['127.0.0.1:16443'], identity: 'spiffe://mesh.local/svc/payments' } } },
  admin: { listen: '127.0.0.1:15000' },
  log: { level: 'info', access: true },
};

/** One real change per documented key (a key without one fails the test: add it here). */
const CHANGES: Record<string, (c: Yaml) => void> = {
  'inbound.authorize': (c) => (c.inbound.authorize = [{ from: ['spiffe://mesh.local/svc/frontend'] }]),
  'inbound.rateLimit': (c) => (c.inbound.rateLimit = { total: { rate: '10/s' } }),
  'inbound.timeout': (c) => (c.inbound.timeout = '3s'),
  'inbound.idleTimeout': (c) => (c.inbound.idleTimeout = '1m'),
  'inbound.tunnelIdleTimeout': (c) => (c.inbound.tunnelIdleTimeout = '10m'),
  'inbound.routes': (c) => (c.inbound.routes = [{ path: '/slow/*', timeout: '60s' }]),
  'inbound.openapi': (c) => (c.inbound.openapi = { spec: '/tmp/orders.openapi.yaml', mode: 'enforce' }),
  'inbound.app': (c) => (c.inbound.app = 'http://127.0.0.1:8081'),
  'inbound.limits': (c) => (c.inbound.limits = { maxConcurrentStreams: 10 }),
  'inbound.listen': (c) => (c.inbound.listen = '127.0.0.1:15444'),
  'outbound.upstreams': (c) => (c.outbound.upstreams.billing = { endpoints: ['127.0.0.1:17443'], identity: 'spiffe://mesh.local/svc/billing' }),
  'outbound.listen': (c) => (c.outbound.listen = '127.0.0.1:15002'),
  'outbound.dnsRefresh': (c) => (c.outbound.dnsRefresh = '1s'),
  'admin.hosts': (c) => (c.admin.hosts = ['meshcar-admin.local']),
  'admin.listen': (c) => (c.admin.listen = '127.0.0.1:15009'),
  'log.level': (c) => (c.log.level = 'debug'),
  'log.access': (c) => (c.log.access = false),
  'metrics.requests': (c) => (c.metrics = { requests: false }),
  drainTimeout: (c) => (c.drainTimeout = '3s'),
  service: (c) => (c.service = 'billing'),
  trustDomain: (c) => {
    c.trustDomain = 'acme.internal';
    c.outbound.upstreams.payments.identity = 'spiffe://acme.internal/svc/payments';
  },
  identity: (c) => (c.identity.ttl = '2h'),
  'http2.codec': (c) => (c.http2 = { codec: 'node' }),
  workers: (c) => (c.workers = 2),
};

/** The backticked key paths of the README sentence that starts at `from` and ends at `to`. */
function keysBetween(text: string, from: string, to: string): string[] {
  const start = text.indexOf(from);
  const end = text.indexOf(to, start);
  if (start === -1 || end === -1) throw new Error(`the README's Live reload section no longer has "${from}" … "${to}"`);
  return [...text.slice(start, end).matchAll(/`([A-Za-z0-9.]+)`/g)].map((m) => m[1] as string);
}

t.test('the README lists exactly what the reload planner applies live', async (t) => {
  const readme = await readFile(README, 'utf8');
  const section = readme.slice(readme.indexOf('### Live reload'), readme.indexOf('\n### ', readme.indexOf('### Live reload') + 5));
  const live = keysBetween(section, 'A valid one takes effect', 'change live.');
  // "listener addresses" is said in words: inbound.listen and outbound.listen
  const restart = [...keysBetween(section, 'Any other change', 'is logged'), 'inbound.listen', 'outbound.listen'];
  t.ok(live.length >= 8 && restart.length >= 6, `lists found (live: ${live.join(', ')}; restart: ${restart.join(', ')})`);
  t.same([...live].sort(), [...LIVE_RELOAD_KEYS].sort(), 'the live list is LIVE_RELOAD_KEYS');
  t.same(keysBetween(section, 'A file that changes', 'is refused whole').sort(), [...IDENTITY_KEYS].sort(), 'the keys that refuse a reload are IDENTITY_KEYS');

  const dir = t.testdir();
  await writeFile(join(dir, 'base.yaml'), stringify(BASE));
  const running = await loadSidecarConfig(join(dir, 'base.yaml'));
  const under = (path: string, key: string) => path === key || path.startsWith(`${key}.`);
  for (const [key, expected] of [...live.map((k) => [k, 'live'] as const), ...restart.map((k) => [k, 'restart'] as const)]) {
    const change = CHANGES[key];
    if (!change) {
      t.fail(`no probe for ${key}: add a change for it to CHANGES`);
      continue;
    }
    const next: Yaml = structuredClone(BASE);
    change(next);
    await writeFile(join(dir, 'next.yaml'), stringify(next));
    const plan = planReload(running, await loadSidecarConfig(join(dir, 'next.yaml')));
    const applied = plan.applied.filter((p) => under(p, key));
    const waiting = plan.restartRequired.filter((p) => under(p, key));
    if (expected === 'live') t.ok(applied.length > 0 && waiting.length === 0, `${key}: README says live; planner applied ${JSON.stringify(plan.applied)}, restart ${JSON.stringify(plan.restartRequired)}`);
    else t.ok(waiting.length > 0 && applied.length === 0, `${key}: README says restart; planner applied ${JSON.stringify(plan.applied)}, restart ${JSON.stringify(plan.restartRequired)}`);
  }
  for (const key of IDENTITY_KEYS) {
    const next: Yaml = structuredClone(BASE);
    CHANGES[key]?.(next);
    await writeFile(join(dir, 'next.yaml'), stringify(next));
    t.same(planReload(running, await loadSidecarConfig(join(dir, 'next.yaml'))).identityChanged, [key], `${key}: README says the file is refused; the planner says so`);
  }
});
