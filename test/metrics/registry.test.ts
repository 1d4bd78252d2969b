// The exported metrics pass promtool's checks, speak OpenMetrics on request, and keep label
// cardinality bounded however many distinct paths clients send.

import t from 'tap';
import { execFile } from 'node:child_process';
import client from 'prom-client';
import { randomBytes, randomUUID } from 'node:crypto';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { MAX_TEMPLATE, OTHER_ROUTE, RouteLabeler, learnedTemplate, methodLabel } from '../../src/metrics/route-templates.js';

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }));
    child.stdin?.end(text);
  });
}

function populate(traffic: TrafficMetrics) {
  for (const direction of ['inbound', 'outbound'] as const) {
    traffic.requestFinished({ direction, peer: 'orders', method: 'GET', path: '/orders/42?x=1', status: 200, durationSeconds: 0.003 });
    traffic.requestFinished({ direction, peer: 'orders', method: 'POST', path: '/orders', status: 503, durationSeconds: 0.01, errorCode: 'upstream_unavailable' });
  }
  traffic.tlsHandshakeFailed('inbound', 'no_client_cert');
  traffic.upstreamSessionsChanged('orders', 1);
  traffic.upstreamStreamsChanged('orders', 1);
}

t.test('promtool check metrics passes on the full output', async (t) => {
  const metrics = new Metrics();
  populate(new TrafficMetrics(metrics));
  metrics.identityCertExpiry.labels('spiffe://mesh.local/svc/orders').set(1e9);
  metrics.identityRenewals.labels('success').inc();
  const text = await metrics.render();
  for (const name of ['meshcar_requests_total', 'meshcar_request_duration_seconds_bucket', 'meshcar_request_errors_total', 'meshcar_tls_handshake_failures_total', 'meshcar_upstream_sessions', 'meshcar_upstream_active_streams', 'meshcar_identity_cert_expiry_timestamp_seconds', 'meshcar_identity_renewals_total', 'meshcar_build_info', 'nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total']) {
    t.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  t.match(text, /meshcar_requests_total\{direction="inbound",peer="orders",method="GET",route="\/orders\/\{id\}",code="200"\} 1/);
  t.notMatch(text, /x=1/, 'no query string in any label');
  const result = await promtool(text);
  t.equal(result.code, 0, result.output);
});

t.test('OpenMetrics when the scraper asks for it', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const open = await metrics.renderFor('application/openmetrics-text; version=1.0.0,text/plain;q=0.5');
  t.match(open.contentType, /application\/openmetrics-text/);
  t.match(open.body, /# EOF\s*$/);
  const plain = await metrics.renderFor('text/plain');
  t.match(plain.contentType, /text\/plain/);
});

t.test('an OpenMetrics scrape leaves the plain text alone, and matches what prom-client writes', async (t) => {
  const metrics = new Metrics();
  populate(new TrafficMetrics(metrics));
  const before = await metrics.renderFor('text/plain');
  const open = await metrics.renderFor('application/openmetrics-text; version=1.0.0');
  t.match(open.body, /^# TYPE meshcar_requests counter$/m, 'counter family named without _total');
  t.match(open.body, /^meshcar_requests_total\{direction="inbound"/m, 'its samples keep _total');
  t.notMatch(open.body, /\n\n/, 'no blank lines');
  const after = await metrics.renderFor(undefined);
  t.match(after.body, /^# TYPE meshcar_requests_total counter$/m, 'plain text still says meshcar_requests_total after an OpenMetrics scrape');
  t.match(after.body, /^meshcar_requests_total\{/m);
  t.equal((await promtool(after.body)).code, 0, 'promtool still passes after an OpenMetrics scrape');
  t.equal(before.body.replace(/^(nodejs|process)_.*$/gm, ''), after.body.replace(/^(nodejs|process)_.*$/gm, ''), 'same families, same names');

  // prom-client's own OpenMetrics rendering, on a registry of its own (it renames the counters it renders)
  const reference = new Metrics({ processMetrics: false });
  const ours = new Metrics({ processMetrics: false });
  for (const m of [reference, ours]) populate(new TrafficMetrics(m));
  const theirs = client.Registry.merge([reference.registry]);
  theirs.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE as typeof client.Registry.PROMETHEUS_CONTENT_TYPE);
  const expected = (await theirs.metrics()).replace(/(_seconds_sum\{[^}]*\}) [\d.e-]+/g, '$1 X');
  const actual = (await ours.renderFor('application/openmetrics-text')).body.replace(/(_seconds_sum\{[^}]*\}) [\d.e-]+/g, '$1 X');
  t.equal(actual, expected, 'byte for byte what prom-client writes');
});

t.test('learned templates and methods', async (t) => {
  t.equal(learnedTemplate('/orders/42'), '/orders/{id}');
  t.equal(learnedTemplate(`/users/${randomUUID()}/cart`), '/users/{id}/cart');
  t.equal(learnedTemplate(`/blobs/${randomBytes(16).toString('hex')}`), '/blobs/{id}');
  t.equal(learnedTemplate('/sessions/aZ3kQ9xLmN2pR7sT8v'), '/sessions/{id}');
  t.equal(learnedTemplate('/orders/recent?limit=5'), '/orders/recent');
  t.equal(learnedTemplate('/'), '/');
  t.equal(methodLabel('GET'), 'GET');
  t.equal(methodLabel('BREW'), 'OTHER');
  const labeler = new RouteLabeler(['/charges/{id}', '/refunds/{id}/items/{item}']);
  t.equal(labeler.routeOf('/charges/ch_123'), '/charges/{id}', 'configured template wins');
  t.equal(labeler.routeOf('/refunds/9/items/abc'), '/refunds/{id}/items/{item}');
  t.equal(labeler.routeOf('/charges'), '/charges', 'no match → learned');
});

t.test('a path is labelled in its canonical form, and braces it carries stay encoded', async (t) => {
  t.equal(learnedTemplate('/orders/%6Dine'), '/orders/mine', 'an escaped unreserved character is the character');
  t.equal(learnedTemplate('/%6frders/%6d%69ne?x=%41'), '/orders/mine', 'any hex case; the query never counts');
  t.equal(learnedTemplate('/files/a%2fb'), '/files/a%2Fb', 'an escaped slash stays one segment, upper-case hex');
  t.equal(learnedTemplate('/x/{y}'), '/x/%7By%7D', 'a literal brace is not a parameter');
  t.equal(learnedTemplate('/x/%7By%7D'), '/x/%7By%7D', 'nor an escaped one');
  t.equal(learnedTemplate('/x/{y}/42'), '/x/%7By%7D/{id}', 'only identifiers become {id}');
  // one route, one learned slot: with a cap of 2, a second route still gets its own label
  const labeler = new RouteLabeler([], 2);
  for (const path of ['/orders/mine', '/orders/%6Dine', '/%6Frders/mine', '/orders/%6d%69%6e%65']) t.equal(labeler.routeOf(path), '/orders/mine', path);
  t.equal(labeler.routeOf('/health'), '/health', 'the spellings took one slot');
  t.equal(labeler.routeOf('/other'), OTHER_ROUTE, 'the cap still holds');
  const configured = new RouteLabeler(['/files/a%2fb/{id}', '/orders/mine']);
  t.equal(configured.routeOf('/files/a%2Fb/7'), '/files/a%2fb/{id}', "a configured template's literal compares in canonical form too");
  t.equal(configured.routeOf('/orders/%6Dine'), '/orders/mine');
});

t.test('a learned route is at most MAX_TEMPLATE characters: a path of many short segments is __other__', async (t) => {
  const labeler = new RouteLabeler();
  const segments = (n: number, tag: string) => '/' + Array.from({ length: n }, (_, i) => `${tag}${String.fromCharCode(97 + (i % 26))}`).join('/');
  const long = segments(100, 'seg'); // 100 short segments, none an identifier: 500 characters
  t.ok(learnedTemplate(long).length > MAX_TEMPLATE, 'its template would be long');
  t.equal(labeler.routeOf(long), OTHER_ROUTE);
  const fits = segments(20, 's'); // 60 characters
  t.equal(labeler.routeOf(fits), fits, 'a shorter one is learned as before');
  // 120 long-path routes do not take the learned slots
  for (let i = 0; i < 120; i++) t.equal(labeler.routeOf(`${long}/${'x'.repeat(i % 50)}`), OTHER_ROUTE, `long path ${i}`);
  t.equal(labeler.routeOf('/orders/42'), '/orders/{id}', 'slots are left for ordinary routes');
});

t.test('10,000 distinct random paths keep the series count bounded: 100 routes per direction and peer by default', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics); // the default cap, as the sidecar builds it
  const randomPath = (i: number) => `/${randomBytes(3).toString('hex').replace(/\d/g, 'x')}/${randomBytes(2).toString('hex').replace(/\d/g, 'y')}?q=${i}`;
  for (let i = 0; i < 10_000; i++) {
    traffic.requestFinished({ direction: 'inbound', peer: 'frontend', method: i % 7 === 0 ? `M${i}` : 'GET', path: randomPath(i), status: 200, durationSeconds: 0.001 });
  }
  const routesOf = async (direction: string, peer: string) => {
    const values = (await metrics.requests.get()).values.filter((v) => v.labels.direction === direction && v.labels.peer === peer);
    return { values, routes: new Set(values.map((v) => String(v.labels.route))) };
  };
  const frontend = await routesOf('inbound', 'frontend');
  t.equal(frontend.routes.size, 101, 'exactly 100 learned routes, then __other__');
  t.ok(frontend.routes.has(OTHER_ROUTE), 'beyond the cap: __other__');
  t.ok(frontend.values.length <= 202, `series bounded: 101 routes × {GET, OTHER} at most (${frontend.values.length})`);
  t.same(new Set(frontend.values.map((v) => v.labels.method)), new Set(['GET', 'OTHER']));
  t.equal(traffic.endpoints().reduce((sum, e) => sum + e.count, 0), 10_000, 'every request counted in the inventory');

  // the cap is per direction and peer: another peer, and the other direction, start afresh
  for (const [direction, peer] of [['inbound', 'billing'], ['outbound', 'frontend']] as const) {
    traffic.requestFinished({ direction, peer, method: 'GET', path: '/orders/42', status: 200, durationSeconds: 0.001 });
    for (let i = 0; i < 150; i++) traffic.requestFinished({ direction, peer, method: 'GET', path: randomPath(i), status: 200, durationSeconds: 0.001 });
    const other = await routesOf(direction, peer);
    t.ok(other.routes.has('/orders/{id}'), `${direction} ${peer}: a new route is learned while inbound frontend is over its cap`);
    t.equal(other.routes.size, 101, `${direction} ${peer}: its own 100 routes, then __other__`);
    t.equal(traffic.routeOf({ direction, peer, method: 'GET', path: '/first/route/of/its/own', status: 200, durationSeconds: 0 }), OTHER_ROUTE, `${direction} ${peer}: then __other__ too`);
  }
  t.equal(traffic.routeOf({ direction: 'inbound', peer: 'frontend', method: 'GET', path: '/first/route/of/its/own', status: 200, durationSeconds: 0 }), OTHER_ROUTE, 'a peer over its cap labels a new route __other__');
});

t.test('peers beyond the cap (1,000 per direction) share the __other__ peer label; the 1,001st does not throw', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  for (let i = 0; i < 1_005; i++) {
    traffic.requestFinished({ direction: 'inbound', peer: `caller-${i}`, method: 'GET', path: '/health', status: 200, durationSeconds: 0.001 });
  }
  const values = (await metrics.requests.get()).values;
  const peers = new Set(values.map((v) => String(v.labels.peer)));
  t.equal(peers.size, 1_001, '1,000 named peers and __other__');
  t.equal(values.find((v) => v.labels.peer === '__other__')?.value, 5, 'the five beyond the cap counted under __other__');
  t.equal(traffic.routeOf({ direction: 'inbound', peer: 'caller-2000', method: 'GET', path: '/health', status: 200, durationSeconds: 0 }), '/health', "routeOf (the access log's) for a peer beyond the cap");
});

t.test('the code label: registered statuses as they are, any other by its class; series bounded whatever the app answers', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  for (let status = 100; status <= 999; status++) {
    traffic.requestFinished({ direction: 'outbound', peer: 'orders', method: 'GET', path: '/orders', status, durationSeconds: 0.001 });
  }
  const codes = new Map((await metrics.requests.get()).values.map((v) => [String(v.labels.code), v.value]));
  for (const registered of ['200', '204', '404', '429', '499', '503']) t.ok(codes.has(registered), `${registered} as it is`);
  for (const unregistered of ['211', '299', '599']) t.notOk(codes.has(unregistered), `${unregistered} is not a label value`);
  t.equal(codes.get('2xx'), 100 - 10, 'the 90 unregistered 2xx statuses share 2xx');
  t.equal(codes.get('other'), 400, '600-999 share other');
  t.ok(codes.size < 80, `series bounded (${codes.size} code values for 900 statuses)`);
  // the discovery rows list them the same way, as OpenAPI response keys (they listed all 900)
  const responses = traffic.discoveryRows()[0]?.responses ?? [];
  t.equal(responses.length, codes.size, `one response key per code value (${responses.length})`);
  t.ok(['200', '2XX', '5XX', 'default'].every((k) => responses.includes(k)) && !responses.includes('299'), 'registered ones as they are, the rest by range, 600-999 as default');
});
