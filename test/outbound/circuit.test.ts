// Circuit breaking: beyond maxRequests in flight (or maxPending waiting for a stream) the app
// gets 503 circuit_open at once, as JSON with x-meshcar-error, and the rest are served; and the
// upstream keys (balancer, circuitBreaker, outlierDetection) are read from the config file.

import t from 'tap';
import { join } from 'node:path';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';

t.test('maxRequests 5, 20 concurrent slow requests: the excess gets 503 circuit_open quickly', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  const fx = await startBalanced(pki, { ports: [up.port], circuitBreaker: { maxRequests: 5, maxPending: 1024 } });
  t.teardown(async () => {
    await fx.close();
    await up.close();
  });
  const results = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const started = Date.now();
      const res = await request(fx.port, { path: '/slow/400', headers: { 'x-request-id': `cb-${i}` } });
      return { res, took: Date.now() - started };
    }),
  );
  const ok = results.filter((r) => r.res.status === 200);
  const refused = results.filter((r) => r.res.status === 503);
  t.equal(ok.length + refused.length, 20);
  t.ok(ok.length >= 5, `${ok.length} served`);
  t.ok(refused.length >= 10, `${refused.length} refused`);
  for (const { res, took } of refused) {
    t.equal(res.headers['x-meshcar-error'], 'circuit_open');
    t.match(res.json<object>(), { error: 'circuit_open', message: /maxRequests/ });
    t.ok(took < 300, `refused at once (${took} ms)`);
  }
  t.equal(fx.observer.circuitOpen, refused.length, 'counted');
  t.ok(up.requests <= ok.length, 'the upstream never saw the refused ones');
  t.ok(
    fx.observer.requests.filter((r) => r.errorCode === 'circuit_open').length === refused.length,
    'request records carry circuit_open',
  );
  t.equal((await request(fx.port)).status, 200, 'closes again once requests finish');
});

t.test('maxPending: requests waiting for a stream beyond the cap get circuit_open', async (t) => {
  const pki = await makePki(TD);
  // one stream per session: everything beyond it waits for the agent
  const up = await startUpstream(pki, { settings: { maxConcurrentStreams: 1 } });
  const fx = await startBalanced(pki, { ports: [up.port], circuitBreaker: { maxRequests: 1024, maxPending: 2 } });
  t.teardown(async () => {
    await fx.close();
    await up.close();
  });
  const results = await Promise.all(Array.from({ length: 10 }, () => request(fx.port, { path: '/slow/200' })));
  const refused = results.filter((r) => r.status === 503 && r.headers['x-meshcar-error'] === 'circuit_open');
  t.ok(refused.length > 0, `${refused.length} refused`);
  t.match(refused[0]?.json<object>(), { message: /maxPending/ });
  t.ok(results.some((r) => r.status === 200), 'the admitted ones are served');
});

t.test('config: balancer, circuitBreaker and outlierDetection per upstream', async (t) => {
  const base = (extra: string) => `service: orders
trustDomain: mesh.local
identity:
  ca:
    url: https://127.0.0.1:8443
    bundle: certs/ca/bundle.pem
    token: certs/orders.token
  dir: certs/orders
outbound:
  listen: 127.0.0.1:15001
  upstreams:
    payments:
      endpoints: [127.0.0.1:16443]
      identity: spiffe://mesh.local/svc/payments
${extra}`;
  const load = (text: string) => loadSidecarConfig(join(t.testdir({ 'c.yaml': text }), 'c.yaml'));
  const plain = await load(base(''));
  const u = plain.outbound?.upstreams[0];
  t.equal(u?.balancer, undefined, 'absent: the defaults apply');
  t.equal(u?.circuitBreaker, undefined);
  t.equal(u?.outlierDetection, undefined);
  const full = await load(
    base(`      balancer: {decay: 5s}
      circuitBreaker: {maxRequests: 100}
      outlierDetection: {consecutiveFailures: 3, baseEjection: 300ms, maxEjectionPercent: 30}
`),
  );
  const f = full.outbound?.upstreams[0];
  t.same(f?.balancer, { decayMs: 5000 });
  t.same(f?.circuitBreaker, { maxRequests: 100, maxPending: 1024 });
  t.same(f?.outlierDetection, { consecutiveFailures: 3, baseEjectionMs: 300, maxEjectionMs: 300_000, maxEjectionPercent: 30 });
  try {
    await load(base(`      circuitBreaker: {maxRequests: 0}
      outlierDetection: {maxEjectionPercent: 150, baseEjection: 10m, maxEjection: 1m}
`));
    t.fail('should not load');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    const lines = (err as ConfigError).issues.map(formatIssue).join('\n');
    t.match(lines, /circuitBreaker\.maxRequests: 0 must be a whole number of at least 1/);
    t.match(lines, /maxEjectionPercent: 150 must be a whole number from 0 to 100/);
  }
});
