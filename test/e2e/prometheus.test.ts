// Prometheus for real: a real `prometheus` (Debian's package; `make tools` installs it) scrapes
// two sidecars' admin ports every second while traffic crosses the pair; the assertions go
// through Prometheus's HTTP query API, as an operator's dashboards and alerts would. Also:
// `promtool check metrics` on a live /metrics, and every PromQL expression of
// config/grafana-dashboard.json evaluated by this Prometheus without error.

import t from 'tap';
import { readFile, writeFile, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMeshCa, startSidecar, httpGet, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';
import { DURATION_BUCKETS } from '../../src/metrics/registry.js';
import { TLS_FAILURE_REASONS } from '../../src/metrics/traffic.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { launchPrometheus, type Prometheus, type PromSample } from '../helpers/prometheus.js';

const DASHBOARD = new URL('../../config/grafana-dashboard.json', import.meta.url);

let ca: MeshCa;
let app: TestApp;
let orders: RunningSidecar;
let frontend: RunningSidecar;
let prometheus: Prometheus | undefined;
let traffic: Promise<void> | undefined;
let stopTraffic = false;

const query = (expr: string) => (prometheus as Prometheus).query(expr);
const vector = (expr: string) => (prometheus as Prometheus).vector(expr);
const eventually = (what: string, check: () => Promise<boolean>, describe: () => string) => (prometheus as Prometheus).eventually(what, check, describe);

/** The longest any request of the test took, timed by the client (which waits for all of it). */
let slowestSeconds = 0;

/** Through the frontend's outbound listener, as the frontend app would call. */
const out = async (path: string, host = 'orders') => {
  const started = performance.now();
  try {
    return await request(frontend.outboundPort, { path, headers: { host } });
  } finally {
    slowestSeconds = Math.max(slowestSeconds, (performance.now() - started) / 1000);
  }
};

/** One round of the mix: configured and learned routes, a policy 403, an app 404, a no_route 404. */
async function round(i: number): Promise<number[]> {
  const answers = await Promise.all([
    out(`/bytes/${100 + (i % 50)}`), // configured template /bytes/{size} outbound; learned /bytes/{id} inbound
    out('/status/204'), // learned /status/{id} both ways
    out(`/admin/users/${i}`), // the policy refuses it inbound: 403
    out('/missing?user=secret'), // the app answers 404; the query string never reaches a label
    out('/headers', 'nowhere'), // no upstream called nowhere: 404 no_route, outbound only
  ]);
  return answers.map((a) => a.status);
}

t.before(async () => {
  const dir = t.testdir();
  // Prometheus starts first and finds the sidecars in a file (file_sd) written once their admin
  // ports are known: its start-up and its discovery's 5 s update cycle overlap the mesh's
  // start instead of following it
  const promDir = join(dir, 'prometheus');
  await mkdir(promDir, { recursive: true });
  const targetsFile = join(promDir, 'targets.json');
  await writeFile(targetsFile, '[]\n');
  prometheus = await launchPrometheus(promDir, ['scrape_configs:', '  - job_name: meshcar', '    file_sd_configs:', `      - files: ['${targetsFile}']`, ''].join('\n'));

  ca = await startMeshCa(dir);
  app = await startEchoApp();
  orders = await startSidecar(ca, {
    service: 'orders',
    inbound: {
      app: `http://127.0.0.1:${app.port}`,
      authorize: ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]', '      paths: [/bytes/*, /status/*, /headers, /missing]'].join('\n'),
    },
  });
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [
      { name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', routes: ['/bytes/{size}'] },
      // a name that never resolves (.invalid, RFC 6761): the lookup failure counter's series
      { name: 'inventory', endpoints: ['dns:inventory.invalid:8443'], identity: 'spiffe://mesh.local/svc/inventory' },
    ],
  });
  // written whole, then renamed into place: Prometheus never reads half a file
  await writeFile(`${targetsFile}.tmp`, `${JSON.stringify([{ targets: [`127.0.0.1:${orders.adminPort}`, `127.0.0.1:${frontend.adminPort}`] }])}\n`);
  await rename(`${targetsFile}.tmp`, targetsFile);

  await prometheus.ready();

  // traffic keeps flowing while Prometheus scrapes, so rate() over the buckets has increases
  traffic = (async () => {
    for (let i = 0; !stopTraffic; i++) {
      await round(i).catch(() => undefined);
      await sleep(50);
    }
  })();
});

t.teardown(async () => {
  stopTraffic = true;
  await traffic;
  await prometheus?.stop();
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
  await app?.close();
});

t.test('the traffic mix answers as expected', async (t) => {
  t.same(await round(0), [200, 204, 403, 404, 404]);
});

t.test('Prometheus scrapes both sidecars', async (t) => {
  let last: PromSample[] = [];
  await eventually(
    'both targets up',
    async () => {
      last = await vector('up{job="meshcar"}');
      return last.length === 2 && last.every((s) => s.value[1] === '1');
    },
    () => JSON.stringify(last),
  );
  t.pass('up == 1 for both admin ports');
});

t.test('meshcar_requests_total has the route and code series of both directions', async (t) => {
  const expected = [
    // outbound, at the frontend's sidecar: peer is the upstream's name
    'outbound orders GET /bytes/{size} 200',
    'outbound orders GET /status/{id} 204',
    'outbound orders GET /admin/users/{id} 403',
    'outbound orders GET /missing 404',
    'outbound unknown GET /headers 404',
    // inbound, at the orders sidecar: peer is the caller's service name
    'inbound frontend GET /bytes/{id} 200',
    'inbound frontend GET /status/{id} 204',
    'inbound frontend GET /admin/users/{id} 403',
    'inbound frontend GET /missing 404',
  ];
  let seen = new Set<string>();
  await eventually(
    'every expected series',
    async () => {
      const samples = await vector('sum by (direction, peer, method, route, code) (meshcar_requests_total{job="meshcar"})');
      seen = new Set(samples.map(({ metric: m }) => `${m.direction} ${m.peer} ${m.method} ${m.route} ${m.code}`));
      return expected.every((e) => seen.has(e));
    },
    () => JSON.stringify([...seen]),
  );
  for (const e of expected) t.ok(seen.has(e), e);
  t.notOk([...seen].some((s) => s.includes('secret') || s.includes('?')), 'no query string in any label');
  const outboundOnOrders = await vector(`meshcar_requests_total{instance="127.0.0.1:${orders.adminPort}", direction="outbound"}`);
  t.equal(outboundOnOrders.length, 0, 'the orders sidecar has no outbound side');
});

t.test('errors by reason, both directions', async (t) => {
  let seen = new Set<string>();
  await eventually(
    'error reasons',
    async () => {
      const samples = await vector('sum by (direction, reason) (meshcar_request_errors_total{job="meshcar"})');
      seen = new Set(samples.map(({ metric: m }) => `${m.direction} ${m.reason}`));
      return seen.has('outbound no_route') && [...seen].some((s) => s.startsWith('inbound '));
    },
    () => JSON.stringify([...seen]),
  );
  t.ok(seen.has('outbound no_route'), 'no_route counted outbound');
  t.ok([...seen].some((s) => s.startsWith('inbound ')), `the policy denial counted inbound (${[...seen].join(', ')})`);
});

t.test('histogram_quantile(0.99, ...) over the duration histogram is a number', async (t) => {
  const overall = 'histogram_quantile(0.99, sum by (le) (rate(meshcar_request_duration_seconds_bucket[1m])))';
  let value = NaN;
  await eventually(
    'a p99',
    async () => {
      const [sample] = await vector(overall);
      value = Number(sample?.value[1]);
      return Number.isFinite(value);
    },
    () => String(value),
  );
  // the sidecars time what happens inside the client's view of each request, so no quantile can
  // lie beyond the bucket that holds the slowest request the client saw; and a request through
  // TLS, HTTP/2 and the app takes longer than the first bucket (0.5 ms). A histogram observed in
  // the wrong unit (ms for s, or s/1000) lands outside these bounds.
  const ceiling = DURATION_BUCKETS.find((le) => le >= slowestSeconds) ?? Infinity;
  t.ok(value > (DURATION_BUCKETS[0] as number), `p99 ${value} s is above the first bucket`);
  t.ok(value <= ceiling, `p99 ${value} s is within the bucket of the slowest request the client saw (${slowestSeconds.toFixed(4)} s, le=${ceiling})`);
  let perDirection: PromSample[] = [];
  await eventually(
    'a p99 per direction',
    async () => {
      perDirection = await vector('histogram_quantile(0.99, sum by (le, direction) (rate(meshcar_request_duration_seconds_bucket[1m])))');
      return perDirection.length === 2 && perDirection.every((s) => Number.isFinite(Number(s.value[1])));
    },
    () => JSON.stringify(perDirection),
  );
  t.same(perDirection.map((s) => s.metric.direction).sort(), ['inbound', 'outbound']);
});

t.test('endpoint discovery as Prometheus reads it: addresses known, failed lookups', async (t) => {
  let last: PromSample[] = [];
  await eventually(
    'meshcar_upstream_endpoints of both upstreams',
    async () => {
      last = await vector(`meshcar_upstream_endpoints{instance="127.0.0.1:${frontend.adminPort}"}`);
      return last.length === 2;
    },
    () => JSON.stringify(last),
  );
  const known = new Map(last.map((s) => [s.metric.upstream, s.value[1]]));
  t.equal(known.get('orders'), '1', 'orders: its one IP endpoint');
  t.equal(known.get('inventory'), '0', 'inventory: no address (the alert: == 0)');
  await eventually(
    'a failed lookup of inventory.invalid',
    async () => {
      last = await vector(`meshcar_upstream_lookup_failures_total{instance="127.0.0.1:${frontend.adminPort}", upstream="inventory"} > 0`);
      return last.length === 1;
    },
    () => JSON.stringify(last),
  );
  t.pass('meshcar_upstream_lookup_failures_total{upstream="inventory"} counts');
});

t.test('renewal failures are a series from the start: increase() sees the first one', async (t) => {
  // a counter series born at 1 has no increase to Prometheus (its first sample is its start), so
  // an alert on increase(...{result="failure"}[15m]) > 0 would miss a sidecar's first failed renewal
  let last: PromSample[] = [];
  await eventually(
    'meshcar_identity_renewals_total{result="failure"} of both sidecars',
    async () => (last = await vector('meshcar_identity_renewals_total{job="meshcar", result="failure"}')).length === 2,
    () => JSON.stringify(last),
  );
  t.same(last.map((s) => s.value[1]), ['0', '0'], 'at 0 before any renewal');
});

t.test('promtool check metrics passes on a live /metrics', async (t) => {
  for (const sidecar of [orders, frontend]) {
    const metrics = await httpGet(sidecar.adminPort, '/metrics');
    t.equal(metrics.status, 200);
    t.match(metrics.body, /^meshcar_requests_total\{/m);
    if (sidecar === frontend) t.match(metrics.body, /^meshcar_upstream_endpoints\{upstream="orders"\} 1$/m, 'the new families are on the page promtool checks');
    if (sidecar === frontend) t.match(metrics.body, /^meshcar_upstream_lookup_failures_total\{upstream="inventory"\} [1-9]/m);
    const result = await promtoolCheck(metrics.body);
    t.equal(result.code, 0, `promtool on ${sidecar === orders ? 'orders' : 'frontend'}: ${result.output || 'clean'}`);
  }
});

// ---- the Grafana dashboard -------------------------------------------------------------------

interface DashTarget {
  readonly expr?: string;
  readonly datasource?: { uid?: string };
}
interface DashPanel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly description?: string;
  readonly datasource?: { uid?: string };
  readonly targets?: DashTarget[];
  readonly panels?: DashPanel[];
}
interface DashVariable {
  readonly type: string;
  readonly name: string;
  readonly definition?: string;
}

/** Grafana's built-in and template variables replaced by what Prometheus can evaluate. */
function concrete(expr: string): string {
  const builtIn: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '5m' };
  return expr.replace(/\$\{?(\w+)(?::\w+)?\}?/g, (_, name: string) => builtIn[name] ?? '.*');
}

/**
 * The sample names both sidecars' /metrics export (a histogram family `x` as `x_bucket`, `x_sum`
 * and `x_count`), with the label names seen on their samples.
 */
async function exportedFamilies(): Promise<Map<string, { labels: Set<string> }>> {
  const names = new Map<string, { labels: Set<string> }>();
  for (const sidecar of [orders, frontend]) {
    const text = (await httpGet(sidecar.adminPort, '/metrics')).body;
    for (const [, family, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const samples = type === 'histogram' ? ['_bucket', '_sum', '_count'].map((suffix) => `${family}${suffix}`) : type === 'summary' ? [family, `${family}_sum`, `${family}_count`] : [family];
      for (const sample of samples as string[]) if (!names.has(sample)) names.set(sample, { labels: new Set() });
    }
    for (const [, sample, labels] of text.matchAll(/^([a-zA-Z_:][\w:]*)\{([^}]*)\}/gm)) {
      for (const [, label] of (labels as string).matchAll(/(\w+)="/g)) names.get(sample as string)?.labels.add(label as string);
    }
  }
  return names;
}

t.test('the Grafana dashboard: valid JSON, and every expression evaluates in Prometheus', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
    schemaVersion: number;
    uid: string;
    title: string;
    panels: DashPanel[];
    templating: { list: DashVariable[] };
  };
  t.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  t.ok(dashboard.uid && dashboard.title);
  const variables = dashboard.templating.list.map((v) => v.name);
  for (const name of ['datasource', 'direction', 'peer']) t.ok(variables.includes(name), `template variable $${name}`);

  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  t.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  const titles = panels.map((p) => p.title).join(' | ');
  for (const needed of [/request rate per route and peer/i, /errors by reason/i, /5xx/i, /p50 latency/i, /p99 latency/i, /tls handshake/i, /upstream .*sessions/i, /upstream active streams/i, /certificate expires/i, /renewals/i, /upstream endpoints known/i, /name lookups failing/i]) {
    t.match(titles, needed, `a panel for ${needed}`);
  }

  // the TLS panel's description names every reason the label takes (one added later included)
  const tlsPanel = panels.find((p) => /tls handshake/i.test(p.title));
  for (const reason of TLS_FAILURE_REASONS) t.match(tlsPanel?.description, new RegExp(`\\b${reason}\\b`), `the TLS panel's description names reason ${reason}`);

  const exprs: Array<{ where: string; expr: string }> = [];
  for (const panel of panels) {
    if (panel.type === 'row') continue;
    t.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: the $datasource variable`);
    for (const target of panel.targets ?? []) if (target.expr) exprs.push({ where: panel.title, expr: target.expr });
  }
  t.ok(exprs.length >= 15, `${exprs.length} panel expressions`);
  const labelValues: Array<{ where: string; metric: string }> = [];
  for (const variable of dashboard.templating.list) {
    const m = variable.definition ? /^label_values\((.+),\s*(\w+)\)$/.exec(variable.definition) : null;
    if (variable.type === 'query') {
      t.ok(m, `$${variable.name} is a label_values() query`);
      if (m) labelValues.push({ where: `$${variable.name}`, metric: m[1] as string });
    }
  }

  // every panel's expression must also parse and evaluate
  for (const { where, expr } of exprs) {
    const answer = await query(concrete(expr));
    t.equal(answer.status, 'success', `${where}: ${concrete(expr)}${answer.error ? ` → ${answer.error}` : ''}`);
    // the discovery panels read series this mesh has (its outbound names dns:inventory.invalid)
    if (/endpoints known|name lookups failing/i.test(where)) t.ok(Array.isArray(answer.data?.result) && answer.data.result.length > 0, `${where}: has series`);
  }
  // and name metric families and labels the sidecars really export: a misspelled name evaluates
  // without error to an empty result, so ask the sidecars' own /metrics
  const exported = await exportedFamilies();
  for (const { where, expr } of [...exprs, ...labelValues.map((v) => ({ where: v.where, expr: v.metric.includes('{') ? v.metric : `${v.metric}{}` }))]) {
    const selectors = [...expr.matchAll(/([a-zA-Z_:][\w:]*)\{([^}]*)\}/g)];
    t.ok(selectors.length > 0, `${where}: selects at least one metric`);
    for (const [, name, matchers] of selectors) {
      const family = exported.get(name as string);
      t.ok(family, `${where}: ${name} is exported by the sidecars`);
      if (!family || family.labels.size === 0) continue; // no series yet to read the labels from
      for (const [, label] of (matchers as string).matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) {
        if (label === 'job' || label === 'instance') continue; // Prometheus adds these
        t.ok(family.labels.has(label as string), `${where}: ${name} has the label ${label}`);
      }
    }
  }
  for (const { where, metric } of labelValues) {
    const samples = await vector(`count(${concrete(metric)})`);
    t.ok(samples.length > 0, `${where}: ${metric} has series`);
  }

  // and the main panels show the traffic of this test
  const rate = await vector(concrete(exprs.find((e) => /request rate per route/i.test(e.where))?.expr ?? ''));
  t.ok(rate.some((s) => s.metric.route === '/bytes/{size}' && s.metric.peer === 'orders'), 'request rate per route has /bytes/{size} to orders');
  const expiry = await vector(concrete(exprs.find((e) => /certificate expires/i.test(e.where))?.expr ?? ''));
  t.equal(expiry.length, 2, 'a certificate expiry per sidecar');
  for (const s of expiry) t.ok(Number(s.value[1]) > 0 && Number(s.value[1]) <= 3600 + 60, `${s.metric.spiffe_id} expires in ${Math.round(Number(s.value[1]))} s (1h TTL)`);
});
