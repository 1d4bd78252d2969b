// Values that pass the reader must work at run time: an HTTP/2 SETTINGS value within its field
// (maxConcurrentStreams), durations within what Node's timers can wait (24 days), except the
// certificate lifetimes, which are date offsets and may be longer.

import t from 'tap';
import { join } from 'node:path';
import { BASE_CONFIG as BASE, configIssues as issuesOf, loadConfigText as load } from '../helpers/config-text.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { loadCaConfig } from '../../src/config/ca-config.js';

/** BASE with an outbound side and a CA identity; each `{KEY}` placeholder is replaced by a duration. */
const FULL = `service: orders
trustDomain: mesh.local
identity:
  ca: {url: "https://127.0.0.1:8443", bundle: b.pem, bundleRefresh: {bundleRefresh}}
  dir: certs
  ttl: {ttl}
inbound:
  listen: 127.0.0.1:15443
  app: http://127.0.0.1:8080
  timeout: {inTimeout}
  idleTimeout: {inIdle}
  tunnelIdleTimeout: {inTunnelIdle}
  limits: {maxSessionAge: {maxSessionAge}}
  routes: [{path: /r, timeout: {routeTimeout}, idleTimeout: {routeIdle}}]
outbound:
  listen: 127.0.0.1:15001
  dnsRefresh: {dnsRefresh}
  upstreams:
    payments:
      endpoints: ["127.0.0.1:16443"]
      identity: spiffe://mesh.local/svc/payments
      timeout: {upTimeout}
      idleTimeout: {upIdle}
      tunnelIdleTimeout: {upTunnelIdle}
      balancer: {decay: {decay}}
      outlierDetection: {baseEjection: {baseEjection}, maxEjection: {maxEjection}}
      retries: {backoff: {base: {backoffBase}, max: {backoffMax}}}
drainTimeout: {drainTimeout}
`;

const TIMER_KEYS: Record<string, string> = {
  bundleRefresh: 'identity.ca.bundleRefresh',
  inTimeout: 'inbound.timeout',
  inIdle: 'inbound.idleTimeout',
  inTunnelIdle: 'inbound.tunnelIdleTimeout',
  maxSessionAge: 'inbound.limits.maxSessionAge',
  routeTimeout: 'inbound.routes[0].timeout',
  routeIdle: 'inbound.routes[0].idleTimeout',
  dnsRefresh: 'outbound.dnsRefresh',
  upTimeout: 'outbound.upstreams.payments.timeout',
  upIdle: 'outbound.upstreams.payments.idleTimeout',
  upTunnelIdle: 'outbound.upstreams.payments.tunnelIdleTimeout',
  decay: 'outbound.upstreams.payments.balancer.decay',
  baseEjection: 'outbound.upstreams.payments.outlierDetection.baseEjection',
  maxEjection: 'outbound.upstreams.payments.outlierDetection.maxEjection',
  backoffBase: 'outbound.upstreams.payments.retries.backoff.base',
  backoffMax: 'outbound.upstreams.payments.retries.backoff.max',
  drainTimeout: 'drainTimeout',
};

function full(values: Record<string, string>): string {
  return FULL.replace(/\{(\w+)\}/g, (_, key: string) => values[key] ?? (key === 'ttl' ? '24h' : '5s'));
}

t.test('inbound.limits.maxConcurrentStreams stays within what HTTP/2 SETTINGS can carry', async (t) => {
  for (const n of ['4294967296', '10001']) {
    t.same(await issuesOf(t, `${BASE}  limits: {maxConcurrentStreams: ${n}}\n`), [
      `c.yaml:8:12: inbound.limits.maxConcurrentStreams: ${n} is too large: allowed 1 to 10000 streams per HTTP/2 connection`,
    ]);
  }
  t.equal((await load(t, `${BASE}  limits: {maxConcurrentStreams: 10000}\n`)).inbound?.limits?.maxConcurrentStreams, 10000);
});

t.test('every timer-backed duration is refused above 24 days, at its key', async (t) => {
  const config = await load(t, full(Object.fromEntries(Object.keys(TIMER_KEYS).map((key) => [key, '24d']))));
  t.equal(config.drainTimeoutMs, 24 * 86_400_000, '24d itself is allowed');
  for (const [key, path] of Object.entries(TIMER_KEYS)) {
    const issues = await issuesOf(t, full({ [key]: '25d' }));
    t.equal(issues.length, 1, `${path}: ${issues.join('\n')}`);
    t.match(issues[0], new RegExp(`^c\\.yaml:\\d+:\\d+: ${path.replace(/[.[\]]/g, '\\$&')}: "25d" is too long: the most allowed is 24d \\(Node's timers cannot wait longer than 24\\.8 days\\)$`), path);
  }
});

t.test('identity.ttl is a lifetime: longer than 24 days is fine, under 1s or over 10 years is not', async (t) => {
  t.equal((await load(t, full({ ttl: '400d' }))).identity.ttlMs, 400 * 86_400_000);
  t.match(await issuesOf(t, full({ ttl: '1ms' })), [/identity\.ttl: "1ms" is too short: the least allowed is 1s$/]);
  t.match(await issuesOf(t, full({ ttl: '3651d' })), [/identity\.ttl: "3651d" is too long: the most allowed is 3650d$/]);
  t.match(await issuesOf(t, full({ ttl: '99999999999999999999d' })), [/identity\.ttl: "99999999999999999999d" is too long/]);
});

t.test("the CA's certificate lifetimes may pass 24 days, up to 10 years", async (t) => {
  const dir = t.testdir({
    'ok.yaml': 'trustDomain: mesh.local\ndir: ca\nmaxTtl: 400d\ndefaultTtl: 30d\nissuerRotation: {before: 60d, ttl: 730d}\n',
    'long.yaml': 'trustDomain: mesh.local\ndir: ca\nmaxTtl: 3651d\n',
  });
  const ok = await loadCaConfig(join(dir, 'ok.yaml'));
  t.same([ok.maxTtlMs, ok.defaultTtlMs, ok.issuerRotation], [400 * 86_400_000, 30 * 86_400_000, { beforeMs: 60 * 86_400_000, ttlMs: 730 * 86_400_000 }]);
  const err = await loadCaConfig(join(dir, 'long.yaml')).catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match((err as ConfigError).issues.map(formatIssue), [/:3:1: maxTtl: "3651d" is too long: the most allowed is 3650d$/]);
});

t.test('workers is at most 64; auto stays', async (t) => {
  t.equal((await load(t, `${BASE}workers: 64\n`)).workers, 64);
  t.equal((await load(t, `${BASE}workers: auto\n`)).workers, 'auto');
  t.same(await issuesOf(t, `${BASE}workers: 100000\n`), ['c.yaml:8:1: workers: 100000 is too many: at most 64 processes, or "auto" for one per core']);
  t.same(await issuesOf(t, `${BASE}workers: 1e3\n`), ['c.yaml:8:1: workers: 1e3 is too many: at most 64 processes, or "auto" for one per core']);
});

t.test('renewal fractions are from 0.1 to 0.9 of the lifetime', async (t) => {
  const renewal = (text: string) => BASE.replace('identity:\n', `identity:\n  renewal: ${text}\n`);
  t.same((await load(t, renewal('{from: 0.1, to: 0.9}'))).identity.renewal, { from: 0.1, to: 0.9 });
  for (const [text, bad] of [['{from: 0.5, to: 0.9999999}', '0.9999999'], ['{from: 0.0001, to: 0.5}', '0.0001']] as const) {
    t.match(await issuesOf(t, renewal(text)), [new RegExp(`identity\\.renewal\\.(from|to): ${bad.replace('.', '\\.')} must be from 0\\.1 to 0\\.9`)], text);
  }
});

t.test('inbound.app equal to inbound.listen, or an endpoint equal to outbound.listen, is a loop', async (t) => {
  t.same(await issuesOf(t, BASE.replace('http://127.0.0.1:8080', 'http://127.0.0.1:15443')), [
    "c.yaml:7:3: inbound.app: 127.0.0.1:15443 is inbound.listen itself: the sidecar would send each request back to itself; give the app's own address",
  ]);
  // a wildcard listener takes loopback connections too
  t.match(await issuesOf(t, BASE.replace('127.0.0.1:15443', '0.0.0.0:8080')), [/inbound\.app: 127\.0\.0\.1:8080 is inbound\.listen itself/]);
  t.ok(await load(t, BASE.replace('127.0.0.1:15443', '127.0.0.1:0')), 'port 0 picks another port');
  const outbound = (endpoint: string, listen = '127.0.0.1:15001') =>
    `${BASE}outbound:\n  listen: "${listen}"\n  upstreams:\n    payments: {endpoints: ["10.0.0.1:16443", "${endpoint}"], identity: spiffe://mesh.local/svc/payments}\n`;
  t.same(await issuesOf(t, outbound('127.0.0.1:15001')), ['c.yaml:11:46: outbound.upstreams.payments.endpoints[1]: "127.0.0.1:15001" is outbound.listen (127.0.0.1:15001) itself: an endpoint is another sidecar\'s inbound port']);
  t.match(await issuesOf(t, outbound('[::1]:15001', '[::]:15001')), [/endpoints\[1\]: "\[::1\]:15001" is outbound\.listen \(\[::\]:15001\) itself/]);
  t.ok(await load(t, outbound('127.0.0.1:16443')), 'another port is fine');
  t.ok(await load(t, outbound('dns:payments.svc:15001')), 'another host is not guessed at');
  // Linux dials 0.0.0.0 and :: as this host: whatever listens here on that port
  for (const endpoint of ['0.0.0.0:16443', '[::]:16443', '255.255.255.255:16443', '[::0]:16443', '[0:0:0:0:0:0:0:0]:16443', '[::ffff:0.0.0.0]:16443', '[::ffff:0:0]:16443']) {
    t.match(await issuesOf(t, outbound(endpoint)), [/endpoints\[1\]: .* is no address to dial \(it means "any" to a listener, or every host of a network\): give the upstream sidecar's inbound address$/], `${endpoint}: refused`);
  }
});

t.test("inbound.app equal to the sidecar's own outbound.listen is a loop too", async (t) => {
  const both = (app: string) => `${BASE.replace('http://127.0.0.1:8080', app)}outbound:\n  listen: 127.0.0.1:15001\n  upstreams:\n    orders: {endpoints: ["127.0.0.1:15443"], identity: spiffe://mesh.local/svc/orders}\n`;
  t.same(await issuesOf(t, both('http://127.0.0.1:15001')), [
    "c.yaml:7:3: inbound.app: 127.0.0.1:15001 is outbound.listen: the sidecar would send each request it receives out again through itself; give the app's own address",
  ]);
  t.match(await issuesOf(t, both('h2c://127.0.0.1:15001').replace('listen: 127.0.0.1:15001', 'listen: 0.0.0.0:15001')), [/inbound\.app: .*:15001 is outbound\.listen/], 'a wildcard outbound listener takes it too');
  t.ok(await load(t, both('http://127.0.0.1:8080')), "the app's own port is fine");
  // localhost is 127.0.0.1 or ::1 (Node tries both); an IPv4-mapped address is its IPv4 one
  const wildcard = (app: string) => both(app).replace('listen: 127.0.0.1:15001', 'listen: 0.0.0.0:15001');
  t.match(await issuesOf(t, wildcard('http://localhost:15001')), [/inbound\.app: localhost:15001 is outbound\.listen/], 'localhost into a wildcard listener');
  t.match(await issuesOf(t, both('http://LocalHost:15001')), [/inbound\.app: .*:15001 is outbound\.listen/], 'localhost into 127.0.0.1');
  t.match(await issuesOf(t, wildcard('http://[::ffff:127.0.0.1]:15001')), [/inbound\.app: .*:15001 is outbound\.listen/], 'an IPv4-mapped loopback address');
  t.match(await issuesOf(t, both('http://[::ffff:127.0.0.1]:15001')), [/inbound\.app: .*:15001 is outbound\.listen/]);
  t.ok(await load(t, both('http://localhost:8080')), 'localhost on its own port is fine');
});

t.test('identity.ca.bundleRefresh is at least 100ms: shorter, the CA would be asked back to back', async (t) => {
  const loaded = await load(t, full({ bundleRefresh: '100ms' }));
  t.equal(loaded.identity.source === 'ca' ? loaded.identity.ca.bundleRefreshMs : undefined, 100);
  t.match(await issuesOf(t, full({ bundleRefresh: '1ms' })), [/identity\.ca\.bundleRefresh: "1ms" is too short: ask the CA for its bundle at most every 100ms$/]);
  t.match(await issuesOf(t, full({ bundleRefresh: '99ms' })), [/bundleRefresh: "99ms" is too short/]);
});

t.test('rate limits are at most 1000000/s, bursts ten seconds of that: beyond, a limit would never bite', async (t) => {
  const inbound = (spec: string) => `${BASE}  rateLimit: {perIdentity: ${spec}}\n`;
  t.same(await issuesOf(t, inbound('{rate: 100000000000000000000000/s}')), [
    'c.yaml:8:29: inbound.rateLimit.perIdentity.rate: "100000000000000000000000/s" is too large: at most 1000000/s (leave the limit out for none)',
  ]);
  t.same(await issuesOf(t, inbound('{rate: 1000001/s}')), ['c.yaml:8:29: inbound.rateLimit.perIdentity.rate: "1000001/s" is too large: at most 1000000/s (leave the limit out for none)']);
  t.same(await issuesOf(t, inbound('{rate: 10/s, burst: 10000001}')), [
    'c.yaml:8:41: inbound.rateLimit.perIdentity.burst: 10000001 is too large: allowed 1 to 10000000 (ten seconds of the largest rate)',
  ]);
  const ok = await load(t, inbound('{rate: 1000000/s, burst: 10000000}'));
  t.same(ok.inbound?.rateLimit?.perIdentity, { perSecond: 1_000_000, burst: 10_000_000 });
  t.same((await load(t, inbound('{rate: 60000000/m}'))).inbound?.rateLimit?.perIdentity, { perSecond: 1_000_000, burst: 1_000_000 }, '60000000/m is 1000000/s');
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: /var/ca\nrateLimit: {rate: 2000000/s}\n' });
  const caIssues = await loadCaConfig(join(dir, 'ca.yaml')).then(
    () => [],
    (err: unknown) => (err instanceof ConfigError ? err.issues.map(formatIssue) : [String(err)]),
  );
  t.match(caIssues, [/ca\.yaml:3:13: rateLimit\.rate: "2000000\/s" is too large: at most 1000000\/s/]);
  t.equal(caIssues.length, 1);
});
