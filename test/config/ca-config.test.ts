import t from 'tap';
import { basename, join, resolve } from 'node:path';
import { loadCaConfig } from '../../src/config/ca-config.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';

const CONTRACT = `trustDomain: mesh.local
dir: certs/ca                        # made by \`meshcar ca init\`
listen: 127.0.0.1:8443
serverNames: [localhost, 127.0.0.1]  # DNS/IP SANs of the CA server's own certificate
maxTtl: 24h
rateLimit: {rate: 20/s, burst: 50}   # per client address
`;

/** The `t` a subtest receives, plugins (testdir) included. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

async function issuesOf(t: TapTest, text: string): Promise<string[]> {
  const file = join(t.testdir({ 'ca.yaml': text }), 'ca.yaml');
  const err = await loadCaConfig(file).then(
    () => t.fail('expected a ConfigError'),
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw err;
  return err.issues.map((issue) => formatIssue({ ...issue, file: basename(issue.file) }));
}

t.test('the contract example loads, frozen', async (t) => {
  const file = join(t.testdir({ 'ca.yaml': CONTRACT }), 'ca.yaml');
  const config = await loadCaConfig(file);
  t.same(config, {
    file: resolve(file),
    trustDomain: 'mesh.local',
    dir: resolve('certs/ca'),
    listen: { host: '127.0.0.1', port: 8443 },
    serverNames: ['localhost', '127.0.0.1'],
    maxTtlMs: 86_400_000,
    defaultTtlMs: 86_400_000,
    rateLimit: { perSecond: 20, burst: 50 },
    log: { level: 'info' },
  });
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.serverNames));
  t.ok(Object.isFrozen(config.rateLimit));
  t.throws(() => {
    (config.serverNames as string[]).push('x');
  }, TypeError);
});

t.test('defaults, and defaultTtl follows a lower maxTtl', async (t) => {
  const config = await loadCaConfig(join(t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: /var/ca\nmaxTtl: 1h\nrateLimit: {rate: 120/m}\nlog: {level: debug}\n' }), 'ca.yaml'));
  t.same(config.listen, { host: '127.0.0.1', port: 8443 });
  t.same(config.serverNames, ['localhost', '127.0.0.1']);
  t.equal(config.dir, '/var/ca');
  t.equal(config.maxTtlMs, 3_600_000);
  t.equal(config.defaultTtlMs, 3_600_000);
  t.same(config.rateLimit, { perSecond: 2, burst: 50 });
  t.equal(config.log.level, 'debug');
});

t.test('every mistake at once, with positions', async (t) => {
  const text = [
    'trustDomain: mesh.local',
    'listen: 127.0.0.1',
    'serverNames: [localhost, "bad name", ::1]',
    'maxTtl: 1h',
    'defaultTtl: 2h',
    'rateLimit: {rate: 20/d, burst: 0}',
    'tokenTtl: 1h',
  ].join('\n');
  t.same(await issuesOf(t, text), [
    'ca.yaml:1:1: dir: required key is missing',
    'ca.yaml:2:1: listen: "127.0.0.1" is not a host:port address: give a port, e.g. 127.0.0.1:8080',
    'ca.yaml:3:26: serverNames[1]: "bad name" is neither a DNS name nor an IP address',
    'ca.yaml:5:1: defaultTtl: "2h" must not be longer than maxTtl ("1h"): lower it, or leave it out and it follows maxTtl',
    'ca.yaml:6:13: rateLimit.rate: "20/d" is not a rate (write 20/s, 100/m or 1000/h)',
    'ca.yaml:6:25: rateLimit.burst: 0 must be a whole number of at least 1',
    'ca.yaml:7:1: tokenTtl: unknown key; allowed here: trustDomain, dir, listen, serverNames, maxTtl, defaultTtl, rateLimit, log, issuerRotation',
  ]);
});

t.test('a defaultTtl over maxTtl is quoted as the file writes it, and the default maxTtl as the docs do', async (t) => {
  // 48h was told as "2d", and the default maxTtl as "1d": values found nowhere the user looks
  t.same(await issuesOf(t, 'trustDomain: mesh.local\ndir: certs\ndefaultTtl: 48h\n'), [
    'ca.yaml:3:1: defaultTtl: "48h" must not be longer than maxTtl ("24h", its default): lower it, or leave it out and it follows maxTtl',
  ]);
});

t.test('wrong types', async (t) => {
  t.same(await issuesOf(t, 'trustDomain: mesh.local\ndir: certs\nserverNames: []\nrateLimit: 20\nmaxTtl: 24\n'), [
    'ca.yaml:3:1: serverNames: list at least one DNS name or IP address',
    'ca.yaml:4:1: rateLimit: expected a map, got a number',
    'ca.yaml:5:1: maxTtl: 24 is not a duration: give a unit (write 250ms, 2s, 5m, 24h or 7d)',
  ]);
  t.same(await issuesOf(t, '[a, b]\n'), ['ca.yaml:1:1: expected a map, got a list']);
});

t.test('maxTtl and defaultTtl are at least 1s: a leaf of 1ms is born expired', async (t) => {
  const issues = await issuesOf(t, 'trustDomain: mesh.local\ndir: certs\nmaxTtl: 1ms\ndefaultTtl: 999ms\n');
  t.equal(issues.length, 2, issues.join('\n'));
  t.equal(issues[0], 'ca.yaml:3:1: maxTtl: "1ms" is too short: the least allowed is 1s');
  t.equal(issues[1], 'ca.yaml:4:1: defaultTtl: "999ms" is too short: the least allowed is 1s');
  const file = join(t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: ca\nmaxTtl: 1s\n' }), 'ca.yaml');
  t.same([(await loadCaConfig(file)).maxTtlMs, (await loadCaConfig(file)).defaultTtlMs], [1000, 1000], '1s itself is taken');
});

t.test('issuerRotation: before (required), ttl (default a year); before must be shorter than ttl', async (t) => {
  const file = join(t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {before: 30d}\n' }), 'ca.yaml');
  t.same((await loadCaConfig(file)).issuerRotation, { beforeMs: 30 * 86_400_000, ttlMs: 365 * 86_400_000 });
  const short = join(t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {before: 2s, ttl: 62s}\n' }), 'ca.yaml');
  t.same((await loadCaConfig(short)).issuerRotation, { beforeMs: 2000, ttlMs: 62_000 }, 'a minute between a new issuer and its own rotation');
  // a new issuer due at once (its notAfter is cut to whole seconds): rotated again and again
  t.same(await issuesOf(t, 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {before: 364d23h59m59s999ms, ttl: 365d}\n'), ['ca.yaml:3:18: issuerRotation.before: must leave a new issuer at least 1m before it is rotated in turn (ttl 365d - before 31535999999ms is 1ms); otherwise the CA rotates its issuer again and again']);
  t.equal((await issuesOf(t, 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {before: 2s, ttl: 4s}\n')).length, 1, 'two seconds apart: refused');
  t.same(await issuesOf(t, 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {before: 400d}\n'), ['ca.yaml:3:18: issuerRotation.before: must be shorter than the issuer lifetime (ttl 365d)']);
  const wrong = await issuesOf(t, 'trustDomain: mesh.local\ndir: ca\nissuerRotation: {ttl: 4s, every: 1d}\n');
  t.equal(wrong.length, 2, wrong.join('\n'));
  t.match(wrong.join('\n'), /issuerRotation\.before: required key is missing/);
  t.match(wrong.join('\n'), /issuerRotation\.every: unknown key/);
});

t.test('a port alone as listen (YAML reads it as a number) is told what to write', async (t) => {
  t.same(await issuesOf(t, 'trustDomain: mesh.local\ndir: /tmp/ca\nlisten: 8443\n'), ['ca.yaml:3:1: listen: 8443 is not a host:port address: give a host before the port, e.g. 127.0.0.1:8443']);
});
