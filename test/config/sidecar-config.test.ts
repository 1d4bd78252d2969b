import t from 'tap';
import { basename, join, resolve } from 'node:path';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { redactConfig } from '../../src/config/freeze.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { LIVE_RELOAD_KEYS, planReload } from '../../src/config/reload-plan.js';

// The contract's example, with the route templates quoted: bare {id} inside [...] is not YAML.
const FULL = `service: orders
trustDomain: mesh.local
identity:
  ca:
    url: https://127.0.0.1:8443
    bundle: certs/ca/bundle.pem
    token: certs/orders.token
  dir: certs/orders
  ttl: 24h
inbound:
  listen: 0.0.0.0:15443
  app: http://127.0.0.1:8080
  timeout: 15s
  authorize:
    - from: [spiffe://mesh.local/svc/frontend, spiffe://mesh.local/jobs/*]
      methods: [GET, POST]
      paths: [/orders, /orders/*]
outbound:
  listen: 127.0.0.1:15001
  upstreams:
    payments:
      endpoints: [127.0.0.1:16443, "dns:payments.svc:443"]
      identity: spiffe://mesh.local/svc/payments
      timeout: 2s
      routes: ["/charges/{id}", "/refunds/{id}"]
    Ledger.Prod:
      endpoints: ["[::1]:16444"]
      identity: spiffe://mesh.local/svc/ledger
admin:
  listen: 127.0.0.1:15000
log:
  level: info
  access: true
`;

/** The `t` a subtest receives, plugins (testdir) included. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** Loads `text` as c.yaml and returns each issue as printed, with the directory left off. */
async function issuesOf(t: TapTest, text: string): Promise<string[]> {
  const file = join(t.testdir({ 'c.yaml': text }), 'c.yaml');
  const err = await loadSidecarConfig(file).then(
    () => t.fail('expected a ConfigError'),
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw err;
  t.equal(err.code, 'config_invalid');
  return err.issues.map((issue) => formatIssue({ ...issue, file: basename(issue.file) }));
}

/** A valid config with `replace` swapped in for the text it names. */
function edit(replace: Record<string, string>): string {
  let text = FULL;
  for (const [from, to] of Object.entries(replace)) {
    if (!text.includes(from)) throw new Error(`fixture lacks ${from}`);
    text = text.replace(from, to);
  }
  return text;
}

t.test('the full contract example loads, typed and absolute', async (t) => {
  const file = join(t.testdir({ 'orders.yaml': FULL }), 'orders.yaml');
  const config = await loadSidecarConfig(file);
  t.equal(config.file, resolve(file));
  t.equal(config.spiffeId, 'spiffe://mesh.local/svc/orders');
  t.same(config.identity, {
    source: 'ca',
    ca: { url: 'https://127.0.0.1:8443', bundle: resolve('certs/ca/bundle.pem'), token: resolve('certs/orders.token'), bundleRefreshMs: 300_000 },
    dir: resolve('certs/orders'),
    ttlMs: 86_400_000,
    renewal: { from: 0.5, to: 0.7 },
  });
  t.same(config.inbound, {
    listen: { host: '0.0.0.0', port: 15443 },
    app: { protocol: 'http', host: '127.0.0.1', port: 8080 },
    timeoutMs: 15_000,
    authorize: [{ from: ['spiffe://mesh.local/svc/frontend', 'spiffe://mesh.local/jobs/*'], methods: ['GET', 'POST'], paths: ['/orders', '/orders/*'] }],
  });
  t.same(config.outbound?.upstreams, [
    {
      name: 'payments',
      endpoints: [{ kind: 'static', host: '127.0.0.1', port: 16443 }, { kind: 'dns', host: 'payments.svc', port: 443 }],
      identity: 'spiffe://mesh.local/svc/payments',
      timeoutMs: 2000,
      routes: ['/charges/{id}', '/refunds/{id}'],
    },
    { name: 'ledger.prod', endpoints: [{ kind: 'static', host: '::1', port: 16444 }], identity: 'spiffe://mesh.local/svc/ledger', timeoutMs: 15_000, routes: [] },
  ]);
  t.same(config.admin, { listen: { host: '127.0.0.1', port: 15000 }, hosts: [] });
  t.same(config.log, { level: 'info', access: true });
});

t.test('the result is deeply frozen', async (t) => {
  const config = await loadSidecarConfig(join(t.testdir({ 'c.yaml': FULL }), 'c.yaml'));
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.outbound?.upstreams));
  t.ok(Object.isFrozen(config.outbound?.upstreams[0]?.endpoints[0]));
  t.ok(Object.isFrozen(config.inbound?.authorize?.[0]?.from));
  t.throws(() => {
    (config as { service: string }).service = 'x';
  }, TypeError);
  const copy = redactConfig(config);
  t.notOk(Object.isFrozen(copy));
  t.same(copy, JSON.parse(JSON.stringify(config)));
});

t.test('a minimal config gets every default', async (t) => {
  const dir = t.testdir({
    'c.yaml': 'service: web\ntrustDomain: mesh.local\nidentity:\n  files: {cert: a.crt, key: a.key, bundle: b.pem}\noutbound:\n  listen: 127.0.0.1:0\n  upstreams:\n    api: {endpoints: [127.0.0.1:1], identity: spiffe://mesh.local/svc/api}\n',
  });
  const config = await loadSidecarConfig(join(dir, 'c.yaml'));
  t.same(config.identity, {
    source: 'files',
    files: { cert: resolve('a.crt'), key: resolve('a.key'), bundle: resolve('b.pem') },
    dir: undefined,
    ttlMs: 86_400_000,
    renewal: { from: 0.5, to: 0.7 },
    unusedKeys: [],
  });
  t.equal(config.inbound, undefined);
  t.same(config.outbound?.listen, { host: '127.0.0.1', port: 0 });
  t.equal(config.outbound?.upstreams[0]?.timeoutMs, 15_000);
  t.same(config.admin.listen, { host: '127.0.0.1', port: 15000 });
  t.same(config.log, { level: 'info', access: false }, 'no access log unless asked for');
  t.same(config.metrics, { requests: true }, 'request metrics are on unless turned off');
});

t.test('admin.hosts: names the admin port answers to, live on reload', async (t) => {
  const load = (text: string) => loadSidecarConfig(join(t.testdir({ 'c.yaml': text }), 'c.yaml'));
  const listed = await load(edit({ '  listen: 127.0.0.1:15000\n': '  listen: 127.0.0.1:15000\n  hosts: [Meshcar-Admin.Local, orders.default.svc.cluster.local.]\n' }));
  t.same(listed.admin.hosts, ['meshcar-admin.local', 'orders.default.svc.cluster.local'], 'lower-case, without the trailing dot');
  t.same((await load(edit({ '  listen: 127.0.0.1:15000\n': '  hosts: []\n' }))).admin, { listen: { host: '127.0.0.1', port: 15000 }, hosts: [] }, 'listen keeps its default');

  t.same(await issuesOf(t, edit({ '  listen: 127.0.0.1:15000\n': '  hosts: admin.local\n' })), ['c.yaml:30:3: admin.hosts: expected a list, got a string']);
  t.same(await issuesOf(t, edit({ '  listen: 127.0.0.1:15000\n': '  hosts: [admin.local, 42, {a: b}]\n' })), [
    'c.yaml:30:24: admin.hosts[1]: expected a host name, got a number',
    'c.yaml:30:28: admin.hosts[2]: expected a host name, got a map',
  ]);
  t.same(await issuesOf(t, edit({ '  listen: 127.0.0.1:15000\n': '  hosts: [10.0.0.1, "[::1]", "admin.local:15000", http://admin.local]\n' })), [
    'c.yaml:30:11: admin.hosts[0]: "10.0.0.1" is an IP address; IP addresses always pass the Host check, list only names',
    'c.yaml:30:21: admin.hosts[1]: "[::1]" is an IP address; IP addresses always pass the Host check, list only names',
    'c.yaml:30:30: admin.hosts[2]: "admin.local:15000" is not a host name; give the name alone, without scheme or port (e.g. meshcar-admin.local)',
    'c.yaml:30:51: admin.hosts[3]: "http://admin.local" is not a host name; give the name alone, without scheme or port (e.g. meshcar-admin.local)',
  ]);
  t.same(await issuesOf(t, edit({ '  listen: 127.0.0.1:15000\n': '  host: [admin.local]\n' })), ['c.yaml:30:3: admin.host: unknown key (did you mean hosts?); allowed here: listen, hosts']);

  t.ok(LIVE_RELOAD_KEYS.includes('admin.hosts'));
  const moved = await load(edit({ '  listen: 127.0.0.1:15000\n': '  listen: 127.0.0.1:15002\n  hosts: [meshcar-admin.local]\n' }));
  const plan = planReload(await load(FULL), moved);
  t.same(plan.applied, ['admin.hosts'], 'the names change live');
  t.same(plan.restartRequired, ['admin.listen'], 'the address does not');
  t.same(plan.effective.admin, { listen: { host: '127.0.0.1', port: 15000 }, hosts: ['meshcar-admin.local'] });
});

t.test('a reload names what it changed by the YAML keys, also where the typed config lays them out otherwise', async (t) => {
  const load = (retries: string) =>
    loadSidecarConfig(
      join(
        t.testdir({
          'c.yaml': `service: web\ntrustDomain: mesh.local\nidentity:\n  files: {cert: a.crt, key: a.key, bundle: b.pem}\noutbound:\n  listen: 127.0.0.1:0\n  upstreams:\n    api:\n      endpoints: [127.0.0.1:1]\n      identity: spiffe://mesh.local/svc/api\n      retries: ${retries}\n`,
        }),
        'c.yaml',
      ),
    );
  const before = await load('{attempts: 2, budget: {ratio: 0.2, minPerSecond: 10}, backoff: {base: 25ms, max: 1s}, bufferLimit: 64KiB}');
  const after = await load('{attempts: 2, budget: {ratio: 0.5, minPerSecond: 20}, backoff: {base: 50ms, max: 2s}, bufferLimit: 128KiB}');
  t.same(
    [...planReload(before, after).applied].sort(),
    ['budget.minPerSecond', 'budget.ratio', 'backoff.base', 'backoff.max', 'bufferLimit'].map((k) => `outbound.upstreams.api.retries.${k}`).sort(),
  );
});

t.test('metrics.requests turns the request-level families off', async (t) => {
  const off = await loadSidecarConfig(join(t.testdir({ 'c.yaml': `${FULL}metrics:\n  requests: false\n` }), 'c.yaml'));
  t.same(off.metrics, { requests: false });
  const empty = await loadSidecarConfig(join(t.testdir({ 'c.yaml': `${FULL}metrics: {}\n` }), 'c.yaml'));
  t.same(empty.metrics, { requests: true }, 'an empty metrics map keeps the default');
  t.same(await issuesOf(t, `${FULL}metrics:\n  requests: maybe\n`), ['c.yaml:35:3: metrics.requests: expected true or false, got a string']);
  t.same(await issuesOf(t, `${FULL}metrics:\n  request: false\n`), ['c.yaml:35:3: metrics.request: unknown key (did you mean requests?); allowed here: requests']);
  t.same(await issuesOf(t, `${FULL}metrics: off\n`), ['c.yaml:34:1: metrics: expected a map, got a string']);
  // no space after the colon: one string to YAML, said as such with the fix (review)
  t.same(await issuesOf(t, `${FULL}metrics:\n  requests:false\n`), ['c.yaml:34:1: metrics: expected a map, got the string "requests:false": a key and its value need a space after the colon (requests: false)']);
  // not for a value whose part before the colon is no key of the map, or a quoted one (a review)
  t.same(await issuesOf(t, `${FULL}metrics: http://127.0.0.1:8080\n`), ['c.yaml:34:1: metrics: expected a map, got a string']);
  t.same(await issuesOf(t, `${FULL}metrics: "requests:false"\n`), ['c.yaml:34:1: metrics: expected a map, got a string']);
});

t.test('unknown key', async (t) => {
  t.same(await issuesOf(t, edit({ '  timeout: 15s\n': '  timout: 15s\n' })), [
    'c.yaml:13:3: inbound.timout: unknown key (did you mean timeout?); allowed here: listen, app, timeout, authorize, rateLimit, limits, idleTimeout, routes, tunnelIdleTimeout, openapi, sessionResumption',
  ]);
});

t.test('wrong type', async (t) => {
  t.same(await issuesOf(t, edit({ 'service: orders': 'service: [orders]' })), ['c.yaml:1:1: service: expected a service name, got a list']);
  t.same(await issuesOf(t, edit({ 'access: true': 'access: yes' })), ['c.yaml:33:3: log.access: expected true or false, got a string']);
  t.same(await issuesOf(t, edit({ 'endpoints: ["[::1]:16444"]': 'endpoints: "[::1]:16444"' })), [
    'c.yaml:27:7: outbound.upstreams["Ledger.Prod"].endpoints: expected a list, got a string',
  ]);
});

t.test('bad duration', async (t) => {
  t.same(await issuesOf(t, edit({ 'timeout: 15s': 'timeout: 15x' })), ['c.yaml:13:3: inbound.timeout: "15x" is not a duration (write 250ms, 2s, 5m, 24h or 7d)']);
  t.same(await issuesOf(t, edit({ 'timeout: 2s': 'timeout: 2' })), [
    'c.yaml:24:7: outbound.upstreams.payments.timeout: 2 is not a duration: give a unit (write 250ms, 2s, 5m, 24h or 7d)',
  ]);
  t.same(await issuesOf(t, edit({ 'ttl: 24h': 'ttl: 0s' })), ['c.yaml:9:3: identity.ttl: "0s" must be longer than zero']);
});

t.test('timeout 0: no response-head deadline, on the inbound side, its routes and each upstream; idle timeouts stay positive', async (t) => {
  for (const zero of ['0', '0s', '0ms']) {
    const yaml = edit({ 'timeout: 15s': `timeout: ${zero}\n  routes:\n    - {path: /watch/*, timeout: ${zero}}`, 'timeout: 2s': `timeout: ${zero}` });
    const config = await loadSidecarConfig(join(t.testdir({ 'c.yaml': yaml }), 'c.yaml'));
    t.equal(config.inbound.timeoutMs, 0, `inbound timeout: ${zero}`);
    t.same(config.inbound.routes, [{ path: '/watch/*', timeoutMs: 0 }], `route timeout: ${zero}`);
    t.equal(config.outbound?.upstreams.find((u) => u.name === 'payments')?.timeoutMs, 0, `upstream timeout: ${zero}`);
  }
  t.same(await issuesOf(t, edit({ 'timeout: 15s': 'timeout: 15s\n  idleTimeout: 0s' })), ['c.yaml:14:3: inbound.idleTimeout: "0s" must be longer than zero']);
  // only a zero as written is "no deadline": one that rounds to 0 ms is refused, not read as none
  t.same(await issuesOf(t, edit({ 'timeout: 15s': 'timeout: 0.4ms' })), ['c.yaml:13:3: inbound.timeout: "0.4ms" is shorter than 1ms: durations count whole milliseconds']);
  t.same(await issuesOf(t, edit({ 'timeout: 2s': 'timeout: 0.0001s' })), ['c.yaml:24:7: outbound.upstreams.payments.timeout: "0.0001s" is shorter than 1ms: durations count whole milliseconds']);
  t.same(await issuesOf(t, edit({ 'timeout: 15s': 'timeout: 15s\n  idleTimeout: 0.2ms' })), ['c.yaml:14:3: inbound.idleTimeout: "0.2ms" is shorter than 1ms: durations count whole milliseconds']);
  t.equal((await loadSidecarConfig(join(t.testdir({ 'c.yaml': edit({ 'timeout: 15s': 'timeout: 0.0s' }) }), 'c.yaml'))).inbound.timeoutMs, 0, '0.0s is a zero as written');
  t.same(await issuesOf(t, edit({ 'timeout: 2s': 'timeout: 1' })), [
    'c.yaml:24:7: outbound.upstreams.payments.timeout: 1 is not a duration: give a unit (write 250ms, 2s, 5m, 24h or 7d)',
  ]);
});

t.test('bad address', async (t) => {
  t.same(await issuesOf(t, edit({ '0.0.0.0:15443': '0.0.0.0:99999' })), [
    'c.yaml:11:3: inbound.listen: "0.0.0.0:99999" is not a host:port address: port 99999 is out of range (0-65535)',
  ]);
  t.same(await issuesOf(t, edit({ 'http://127.0.0.1:8080': 'http://127.0.0.1:8080/api' })), [
    'c.yaml:12:3: inbound.app: "http://127.0.0.1:8080/api" is not an app URL: give only the scheme, host and port: no path, query or user',
  ]);
  // a password in either URL is not quoted back: errors reach stderr, doctor --json and, on a refused reload, the log
  t.same(await issuesOf(t, edit({ 'http://127.0.0.1:8080': 'http://app:APP-SECRET@127.0.0.1:8080' })), [
    'c.yaml:12:3: inbound.app: "http://***@127.0.0.1:8080" is not an app URL: give only the scheme, host and port: no path, query or user',
  ]);
  t.same(await issuesOf(t, edit({ 'https://127.0.0.1:8443': 'https://ca:CA-SECRET@127.0.0.1:8443' })), [
    'c.yaml:5:5: identity.ca.url: "https://***@127.0.0.1:8443" is not a CA URL: credentials do not belong in the URL',
  ]);
  // also written raw with / in it, without a scheme, or in an endpoint or a listen address
  t.same(await issuesOf(t, edit({ 'https://127.0.0.1:8443': 'https://ca:pa/ss1@127.0.0.1:8443' })), [
    'c.yaml:5:5: identity.ca.url: "https://***@127.0.0.1:8443" is not a CA URL: not a URL; write https://HOST:PORT',
  ]);
  const endpoint = await issuesOf(t, edit({ '127.0.0.1:16443,': 'u:SECRET7@orders:16443,' }));
  t.match(endpoint, [/^c\.yaml:22:19: outbound\.upstreams\.payments\.endpoints\[0\]: "\*\*\*@orders:16443" is not an endpoint: /]);
  const listen = await issuesOf(t, edit({ '0.0.0.0:15443': 'http://u:SECRET4@127.0.0.1:15443' }));
  t.match(listen, [/^c\.yaml:11:3: inbound\.listen: "http:\/\/\*\*\*@127\.0\.0\.1:15443" is not a host:port address: /]);
  t.notMatch(JSON.stringify([endpoint, listen]), /SECRET/, 'no password quoted');
  t.same(await issuesOf(t, edit({ '127.0.0.1:16443,': '127.0.0.1:0,' })), [
    'c.yaml:22:19: outbound.upstreams.payments.endpoints[0]: "127.0.0.1:0" is not an endpoint: port 0 is out of range (1-65535)',
  ]);
  t.same(await issuesOf(t, edit({ 'https://127.0.0.1:8443': 'http://127.0.0.1:8443' })), [
    'c.yaml:5:5: identity.ca.url: "http://127.0.0.1:8443" is not a CA URL: the CA is reached over https://, not http://',
  ]);
  // kept as given by the URL parser, it had the client dial 443 with the join token
  t.same(await issuesOf(t, edit({ 'https://127.0.0.1:8443': 'https://127.0.0.1:0' })), [
    'c.yaml:5:5: identity.ca.url: "https://127.0.0.1:0" is not a CA URL: port 0 is out of range (1-65535)',
  ]);
});

t.test('bad SPIFFE ID', async (t) => {
  t.same(await issuesOf(t, edit({ 'identity: spiffe://mesh.local/svc/payments': 'identity: payments' })), [
    'c.yaml:23:7: outbound.upstreams.payments.identity: "payments" is not a SPIFFE ID: must start with spiffe://',
  ]);
  t.same(await issuesOf(t, edit({ 'spiffe://mesh.local/jobs/*': 'spiffe://mesh.local/jobs*' })), [
    'c.yaml:15:48: inbound.authorize[0].from[1]: "spiffe://mesh.local/jobs*": * may only be a whole last segment, as in spiffe://mesh.local/svc/*',
  ]);
  // a peer with the trust domain's own ID is refused, so a rule or upstream naming it could never match
  t.same(await issuesOf(t, edit({ 'identity: spiffe://mesh.local/svc/payments': 'identity: spiffe://mesh.local', 'spiffe://mesh.local/svc/frontend': 'spiffe://mesh.local' })), [
    'c.yaml:15:14: inbound.authorize[0].from[0]: "spiffe://mesh.local" is the trust domain\'s own ID, which names no workload (no SVID carries it); give a workload\'s ID, as spiffe://mesh.local/svc/NAME',
    'c.yaml:23:7: outbound.upstreams.payments.identity: "spiffe://mesh.local" is the trust domain\'s own ID, which names no workload (no SVID carries it); give a workload\'s ID, as spiffe://mesh.local/svc/NAME',
  ]);
});

t.test('foreign trust domain', async (t) => {
  t.same(await issuesOf(t, edit({ 'spiffe://mesh.local/svc/frontend': 'spiffe://other.org/svc/frontend' })), [
    "c.yaml:15:14: inbound.authorize[0].from[0]: \"spiffe://other.org/svc/frontend\" belongs to trust domain other.org, but this config's trustDomain is mesh.local",
  ]);
});

t.test('identity.ca and identity.files together', async (t) => {
  t.same(await issuesOf(t, edit({ '  dir: certs/orders\n': '  files: {cert: a, key: b, bundle: c}\n  dir: certs/orders\n' })), [
    'c.yaml:8:3: identity.files: give identity.ca or identity.files, not both: a sidecar has one source of certificates',
  ]);
});

t.test('no certificate source, or no dir for the CA source', async (t) => {
  t.same(await issuesOf(t, 'service: a\ntrustDomain: mesh.local\nidentity:\n  ttl: 1h\noutbound:\n  listen: 127.0.0.1:0\n  upstreams: {b: {endpoints: [b:1], identity: spiffe://mesh.local/svc/b}}\n'), [
    'c.yaml:3:1: identity: give a source of certificates: identity.ca (the meshcar CA) or identity.files (certificates managed elsewhere)',
  ]);
  t.same(await issuesOf(t, edit({ '  dir: certs/orders\n': '' })), [
    'c.yaml:3:1: identity.dir: required with identity.ca: where the sidecar keeps its key and certificate across restarts',
  ]);
});

t.test('missing required key points at the parent map', async (t) => {
  t.same(await issuesOf(t, edit({ '  app: http://127.0.0.1:8080\n': '' })), ['c.yaml:10:1: inbound.app: required key is missing']);
  t.same(await issuesOf(t, edit({ 'service: orders\n': '' })), ['c.yaml:1:1: service: required key is missing']);
});

t.test('YAML syntax error', async (t) => {
  t.same(await issuesOf(t, edit({ '  timeout: 15s\n': '  timeout: "15s\n' })), ['c.yaml:13:16: YAML syntax: Missing closing "quote']);
});

t.test('neither inbound nor outbound', async (t) => {
  t.same(await issuesOf(t, 'service: a\ntrustDomain: mesh.local\nidentity:\n  files: {cert: a, key: b, bundle: c}\n'), [
    'c.yaml:1:1: give inbound, outbound or both: a sidecar with neither has nothing to do',
  ]);
});

t.test('upstream names', async (t) => {
  t.same(await issuesOf(t, edit({ '    Ledger.Prod:': '    PAYMENTS:' })), [
    'c.yaml:26:5: outbound.upstreams.PAYMENTS: same upstream as payments: names are matched case-insensitively',
  ]);
  t.same(await issuesOf(t, edit({ '    Ledger.Prod:': '    ledger_prod:' })), [
    'c.yaml:26:5: outbound.upstreams.ledger_prod: "ledger_prod" is not an upstream name: use letters, digits, dots and dashes (the host name the app sends)',
  ]);
  // the router reads Host without its final dot: the name answered only `Host: pay.` exactly
  t.same(await issuesOf(t, edit({ '    Ledger.Prod:': '    pay.:' })), [
    'c.yaml:26:5: outbound.upstreams["pay."]: "pay." is not an upstream name: no dot at its end (write "pay"; the app may still send it with one)',
  ]);
  // the metrics' peer label of requests that name no upstream: the two shared series (metrics review)
  t.same(await issuesOf(t, edit({ '    Ledger.Prod:': '    Unknown:' })), [
    'c.yaml:26:5: outbound.upstreams.Unknown: "Unknown" is not an upstream name here: it is the label meshcar\'s metrics give requests that name no upstream; name it otherwise (the app\'s Host is then that name)',
  ]);
  // not the dot rule's hint first, which named "unknown" (re-review)
  t.same(await issuesOf(t, edit({ '    Ledger.Prod:': '    unknown.:' })), [
    'c.yaml:26:5: outbound.upstreams["unknown."]: "unknown." is not an upstream name here: it is the label meshcar\'s metrics give requests that name no upstream; name it otherwise (the app\'s Host is then that name)',
  ]);
});

t.test('a URL where HOST:PORT belongs: said so', async (t) => {
  t.same(await issuesOf(t, edit({ '127.0.0.1:16443,': 'https://127.0.0.1:16443,' })), [
    'c.yaml:22:19: outbound.upstreams.payments.endpoints[0]: "https://127.0.0.1:16443" is not an endpoint: give HOST:PORT, not a URL (no scheme), e.g. 127.0.0.1:8080',
  ]);
});

t.test('authorize rules, renewal window and listener clashes', async (t) => {
  t.same(await issuesOf(t, edit({ 'methods: [GET, POST]': 'methods: [get]', 'paths: [/orders, /orders/*]': 'paths: [orders, /a*b]' })), [
    'c.yaml:16:17: inbound.authorize[0].methods[0]: write HTTP methods in upper case: GET',
    'c.yaml:17:15: inbound.authorize[0].paths[0]: "orders" must start with /',
    'c.yaml:17:23: inbound.authorize[0].paths[1]: "/a*b": * may only come last, as in /orders/*',
  ]);
  // patterns no request can match: every caller of the rule would be denied in silence
  t.same(await issuesOf(t, edit({ 'paths: [/orders, /orders/*]': 'paths: [/café/*, /orders/../admin, "//orders/*", /a/%2e%2e/*, /%zz, /.well-known/*, /a;b, /a%2*, /caf%C3%A9]' })), [
    'c.yaml:17:15: inbound.authorize[0].paths[0]: "/café/*" holds characters a request path carries percent-encoded; write it as clients send it: /caf%C3%A9/*',
    'c.yaml:17:24: inbound.authorize[0].paths[1]: "/orders/../admin" can match no request: the inbound refuses such paths (dot segments, // first, malformed or double percent-encoding) with 400 before the rules',
    'c.yaml:17:42: inbound.authorize[0].paths[2]: "//orders/*" can match no request: the inbound refuses such paths (dot segments, // first, malformed or double percent-encoding) with 400 before the rules',
    'c.yaml:17:56: inbound.authorize[0].paths[3]: "/a/%2e%2e/*" can match no request: the inbound refuses such paths (dot segments, // first, malformed or double percent-encoding) with 400 before the rules',
    'c.yaml:17:69: inbound.authorize[0].paths[4]: "/%zz" can match no request: the inbound refuses such paths (dot segments, // first, malformed or double percent-encoding) with 400 before the rules',
  ]);
  t.same(await issuesOf(t, edit({ '  authorize:\n': '  authorize: []\n  x:\n' }).replace(/    - from.*\n.*\n.*\n/, '')), [
    'c.yaml:14:3: inbound.authorize: list at least one rule, or leave authorize out to let any identity of the trust domain call',
    'c.yaml:15:3: inbound.x: unknown key; allowed here: listen, app, timeout, authorize, rateLimit, limits, idleTimeout, routes, tunnelIdleTimeout, openapi, sessionResumption',
  ]);
  t.same(await issuesOf(t, edit({ '  ttl: 24h\n': '  renewal: {from: 0.8}\n' })), ['c.yaml:9:3: identity.renewal: from (0.8) must not be greater than to (0.7)']);
  t.same(await issuesOf(t, edit({ '  ttl: 24h\n': '  renewal: {to: 1}\n' })), [
    "c.yaml:9:13: identity.renewal.to: 1 must be from 0.1 to 0.9 (a fraction of the certificate's lifetime: renew neither at once nor at the last moment)",
  ]);
  t.same(await issuesOf(t, edit({ '127.0.0.1:15001': '127.0.0.1:15443' })), [
    'c.yaml:19:3: outbound.listen: 127.0.0.1:15443 clashes with inbound.listen: each listener needs its own port',
  ]);
  t.same(await issuesOf(t, edit({ '127.0.0.1:15001': '127.0.0.1:15000', 'admin:\n  listen: 127.0.0.1:15000\n': '' })), [
    'c.yaml:19:3: outbound.listen: clashes with admin.listen (default 127.0.0.1:15000): pick another port or set admin.listen',
  ]);
  // localhost listens on 127.0.0.1 (or ::1): the port is the admin's, and run would fail on it
  t.same(await issuesOf(t, edit({ '127.0.0.1:15001': 'localhost:15000' })), [
    'c.yaml:30:3: admin.listen: 127.0.0.1:15000 clashes with outbound.listen: each listener needs its own port',
  ]);
  t.same(await issuesOf(t, edit({ '127.0.0.1:15001': '"[::ffff:127.0.0.1]:15000"' })), ['c.yaml:30:3: admin.listen: 127.0.0.1:15000 clashes with outbound.listen: each listener needs its own port'], 'an IPv4-mapped address too');
});

t.test('a file with several mistakes reports all of them at once, in file order', async (t) => {
  const text = edit({
    'trustDomain: mesh.local': 'trustDomain: Mesh.Local',
    'ttl: 24h': 'ttl: 1d2',
    'timeout: 15s': 'timeout: -1s',
    '    token: certs/orders.token\n': '    token: certs/orders.token\n    colour: blue\n',
    'level: info': 'level: loud',
    'identity: spiffe://mesh.local/svc/ledger': 'identity: spiffe://other/svc/ledger',
  });
  t.same(await issuesOf(t, text), [
    'c.yaml:2:1: trustDomain: "Mesh.Local" is not a trust domain: use lower-case letters, digits, dots, dashes and underscores, e.g. mesh.local',
    'c.yaml:8:5: identity.ca.colour: unknown key; allowed here: url, bundle, token, bundleRefresh',
    'c.yaml:10:3: identity.ttl: "1d2" is not a duration (write 250ms, 2s, 5m, 24h or 7d)',
    'c.yaml:14:3: inbound.timeout: "-1s" is not a duration (write 250ms, 2s, 5m, 24h or 7d)',
    // The trust domain is invalid, so IDs are checked for syntax only, not membership.
    'c.yaml:33:3: log.level: "loud" is not a log level; use one of trace, debug, info, warn, error, fatal, silent',
  ]);
});

t.test('a trust domain is a name: dots between labels, a letter or digit somewhere', async (t) => {
  t.same(await issuesOf(t, edit({ 'trustDomain: mesh.local': 'trustDomain: mesh..local' })).then((issues) => issues.slice(0, 1)), [
    'c.yaml:2:1: trustDomain: "mesh..local" is not a trust domain: dots only between labels: no leading, trailing or doubled dot, e.g. mesh.local',
  ]);
  t.same(await issuesOf(t, edit({ 'trustDomain: mesh.local': "trustDomain: '-'" })).then((issues) => issues.slice(0, 1)), [
    'c.yaml:2:1: trustDomain: "-" is not a trust domain: it needs a letter or digit, e.g. mesh.local',
  ]);
});

t.test('inbound idle timeout and routes', async (t) => {
  const yaml = edit({ '  timeout: 15s\n': '  timeout: 15s\n  idleTimeout: 2m\n  routes:\n    - {path: /reports/*, timeout: 60s, idleTimeout: 10m}\n    - {path: /health}\n' });
  const config = await loadSidecarConfig(join(t.testdir({ 'c.yaml': yaml }), 'c.yaml'));
  t.equal(config.inbound.idleTimeoutMs, 120_000);
  t.same(config.inbound.routes, [{ path: '/reports/*', timeoutMs: 60_000, idleTimeoutMs: 600_000 }, { path: '/health' }]);
  const bad = edit({ '  timeout: 15s\n': '  timeout: 15s\n  routes:\n    - {path: reports, timeout: 0x}\n' });
  const issues = await issuesOf(t, bad);
  t.equal(issues.length, 2, issues.join('\n'));
});

t.test('inbound.sessionResumption: off unless true; anything but true or false is refused where it stands', async (t) => {
  const plain = await loadSidecarConfig(join(t.testdir({ 'c.yaml': edit({}) }), 'c.yaml'));
  t.equal(plain.inbound.sessionResumption, undefined, 'absent: off');
  const on = await loadSidecarConfig(join(t.testdir({ 'c.yaml': edit({ '  timeout: 15s\n': '  timeout: 15s\n  sessionResumption: true\n' }) }), 'c.yaml'));
  t.equal(on.inbound.sessionResumption, true);
  const issues = await issuesOf(t, edit({ '  timeout: 15s\n': '  timeout: 15s\n  sessionResumption: yes please\n' }));
  t.same(issues, ['c.yaml:14:3: inbound.sessionResumption: expected true or false, got a string'], issues.join('\n'));
});

t.test('one half of backoff or of the ejection times alone: the other half follows it, not refused against its default', async (t) => {
  const upstream = (policy: string) =>
    `service: web\ntrustDomain: mesh.local\nidentity:\n  files: {cert: a.crt, key: a.key, bundle: b.pem}\noutbound:\n  listen: 127.0.0.1:0\n  upstreams:\n    api:\n      endpoints: [127.0.0.1:1]\n      identity: spiffe://mesh.local/svc/api\n      ${policy}\n`;
  const load = async (policy: string) => (await loadSidecarConfig(join(t.testdir({ 'c.yaml': upstream(policy) }), 'c.yaml'))).outbound?.upstreams[0];
  t.match((await load('retries: {backoff: {base: 2s}}'))?.retries, { backoffBaseMs: 2000, backoffMaxMs: 2000 }, 'base 2s alone: max rises to it');
  t.match((await load('retries: {backoff: {max: 10ms}}'))?.retries, { backoffBaseMs: 10, backoffMaxMs: 10 }, 'max 10ms alone: base falls to it');
  t.match((await load('retries: {backoff: {base: 5ms}}'))?.retries, { backoffBaseMs: 5, backoffMaxMs: 1000 }, 'within the defaults, the other keeps its default');
  t.match((await load('outlierDetection: {maxEjection: 10s}'))?.outlierDetection, { baseEjectionMs: 10_000, maxEjectionMs: 10_000 }, 'maxEjection 10s alone: the base falls to it');
  t.match((await load('outlierDetection: {baseEjection: 10m}'))?.outlierDetection, { baseEjectionMs: 600_000, maxEjectionMs: 600_000 }, 'baseEjection 10m alone: the max rises to it');
  // both written and contradicting: still refused, naming both
  t.same(await issuesOf(t, upstream('retries: {backoff: {base: 2s, max: 1s}}')), ['c.yaml:11:7: outbound.upstreams.api.retries: backoff.max (1000 ms) must not be shorter than backoff.base (2000 ms)']);
  t.same(await issuesOf(t, upstream('outlierDetection: {baseEjection: 1m, maxEjection: 10s}')), ['c.yaml:11:7: outbound.upstreams.api.outlierDetection: maxEjection (10000 ms) must not be shorter than baseEjection (60000 ms)']);
});
