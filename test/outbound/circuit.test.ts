// Circuit breaking: beyond maxRequests in flight (or maxPending waiting for a stream) the app
// gets 503 circuit_open at once, as JSON with x-meshcar-error, and the rest are served; and the
// upstream keys (balancer, circuitBreaker, outlierDetection) are read from the config file.

import t from 'tap';
import { join } from 'node:path';
import type { ServerHttp2Stream } from 'node:http2';
import { makePki, request, sleep, startUpstream, TD, type Http1Result } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';

t.test('maxRequests 5, 20 concurrent requests: the excess gets 503 circuit_open while the five are still in flight', async (t) => {
  const pki = await makePki(TD);
  // the upstream holds every request until the test lets go
  const held: ServerHttp2Stream[] = [];
  const up = await startUpstream(pki, {
    handler: (stream) => {
      stream.on('error', () => {});
      stream.resume();
      held.push(stream);
    },
  });
  const fx = await startBalanced(pki, { ports: [up.port], circuitBreaker: { maxRequests: 5, maxPending: 1024 } });
  t.teardown(async () => {
    await fx.close();
    await up.close();
  });
  const refused: Http1Result[] = [];
  const served = Array.from({ length: 20 }, (_, i) =>
    request(fx.port, { path: '/echo', headers: { 'x-request-id': `cb-${i}` } }).then((res) => {
      if (res.status === 503) refused.push(res);
      return res;
    }),
  );
  // "at once": the refusals all arrive while the admitted five are still held upstream
  const deadline = Date.now() + 10_000;
  while ((refused.length < 15 || held.length < 5) && Date.now() < deadline) await sleep(5);
  t.equal(held.length, 5, 'five reached the upstream and are held there');
  t.equal(refused.length, 15, 'the other fifteen were refused meanwhile');
  for (const res of refused) {
    t.equal(res.headers['x-meshcar-error'], 'circuit_open');
    t.match(res.json<object>(), { error: 'circuit_open', message: /maxRequests/ });
  }
  for (const stream of held) stream.respond({ ':status': 200 }, { endStream: true });
  const results = await Promise.all(served);
  t.equal(results.filter((r) => r.status === 200).length, 5, 'the five are served once the upstream answers');
  t.equal(fx.observer.circuitOpen, 15, 'counted');
  t.equal(up.requests, 5, 'the upstream never saw the refused ones');
  t.equal(fx.observer.requests.filter((r) => r.errorCode === 'circuit_open').length, 15, 'request records carry circuit_open');
  // closes again once requests finish: the next one reaches the upstream
  const again = request(fx.port, { path: '/echo' });
  while (held.length < 6 && Date.now() < deadline + 10_000) await sleep(5);
  held[5]?.respond({ ':status': 200 }, { endStream: true });
  t.equal((await again).status, 200, 'admitted again once the five finished');
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
