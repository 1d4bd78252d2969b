// The /metrics scrape time with a fully populated sidecar (`make bench-metrics`): a TrafficMetrics
// with 100 routes × 4 peers × 2 directions, several status codes and error reasons per route,
// default process metrics on, rendered as Prometheus text and as OpenMetrics. Reports the
// median and p99 render time and the body size. Imports the compiled code from dist/.
//
// Usage: node bench/metrics-scrape.mjs      (needs `make build`; `make bench-metrics` does both)
// Environment: SCRAPE_RENDERS (50) renders per format, SCRAPE_ROUTES (100), SCRAPE_PEERS (4).

import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const DIST = new URL('../dist/metrics/', import.meta.url);
if (!existsSync(new URL('registry.js', DIST))) {
  process.stderr.write('bench-metrics: dist/ is missing: run "make build" first (or "make bench-metrics", which does)\n');
  process.exit(2);
}
const { Metrics } = await import(new URL('registry.js', DIST).href);
const { TrafficMetrics } = await import(new URL('traffic-metrics.js', DIST).href);

const RENDERS = Number(process.env.SCRAPE_RENDERS ?? 50);
const ROUTES = Number(process.env.SCRAPE_ROUTES ?? 100);
const PEERS = Number(process.env.SCRAPE_PEERS ?? 4);
const DIRECTIONS = ['inbound', 'outbound'];
const METHODS = ['GET', 'POST'];
// per route: mostly 200s, some 404/429/503; errors with a meshcar reason on the 5xx
const STATUSES = [
  { status: 200 },
  { status: 201 },
  { status: 404 },
  { status: 429, errorCode: 'rate_limited' },
  { status: 503, errorCode: 'upstream_unavailable' },
];

const metrics = new Metrics();
const traffic = new TrafficMetrics(metrics, { routeCap: ROUTES });
let records = 0;
for (const direction of DIRECTIONS) {
  for (let p = 0; p < PEERS; p++) {
    const peer = `service-${p}`;
    for (let r = 0; r < ROUTES; r++) {
      // distinct learned templates: /api/resource-<r>/{id}
      for (const [i, s] of STATUSES.entries()) {
        const method = METHODS[(r + i) % METHODS.length];
        // a spread of durations so many buckets are non-zero
        for (let k = 0; k < 3; k++) {
          traffic.requestFinished({ direction, peer, method, path: `/api/resource-${r}/${1000 + k}`, status: s.status, durationSeconds: 0.0004 * 3 ** ((k + i) % 8), errorCode: s.errorCode });
          records++;
        }
      }
    }
    traffic.upstreamSessionsChanged(peer, 1);
    traffic.upstreamStreamsChanged(peer, 2);
  }
}
traffic.tlsHandshakeFailed('inbound', 'no_client_cert');
metrics.identityCertExpiry.labels('spiffe://mesh.local/svc/bench').set(Date.now() / 1000 + 86_400);
metrics.identityRenewals.labels('success').inc();

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

async function measure(accept) {
  for (let i = 0; i < 5; i++) await metrics.renderFor(accept); // warm-up
  const times = [];
  let body = '';
  for (let i = 0; i < RENDERS; i++) {
    const start = performance.now();
    ({ body } = await metrics.renderFor(accept));
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const lines = body.split('\n');
  return {
    median_ms: quantile(times, 0.5),
    p99_ms: quantile(times, 0.99),
    max_ms: times[times.length - 1],
    bytes: Buffer.byteLength(body),
    samples: lines.filter((l) => l !== '' && !l.startsWith('#')).length,
    meshcar_samples: lines.filter((l) => l.startsWith('meshcar_')).length,
  };
}

const requestSeries = (await metrics.requests.get()).values.length;
const histogramSeries = new Set((await metrics.requestDuration.get()).values.map((v) => JSON.stringify({ ...v.labels, le: undefined }))).size;
const text = await measure(undefined);
const open = await measure('application/openmetrics-text; version=1.0.0');

const f = (n, d = 2) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
process.stdout.write(
  [
    `meshcar /metrics scrape: ${ROUTES} routes × ${PEERS} peers × ${DIRECTIONS.length} directions, ${STATUSES.length} statuses per route; ${records.toLocaleString('en-US')} requests recorded; node ${process.version}`,
    `series: meshcar_requests_total ${requestSeries}, meshcar_request_duration_seconds ${histogramSeries} histograms (17 lines each: 14 buckets, +Inf, _sum, _count)`,
    '',
    'format          renders  median ms  p99 ms  max ms  body KiB  samples',
    '--------------  -------  ---------  ------  ------  --------  -------',
    ...[['text (0.0.4)', text], ['OpenMetrics', open]].map(([name, m]) =>
      `${name.padEnd(14)}  ${String(RENDERS).padStart(7)}  ${f(m.median_ms).padStart(9)}  ${f(m.p99_ms).padStart(6)}  ${f(m.max_ms).padStart(6)}  ${f(m.bytes / 1024, 0).padStart(8)}  ${m.samples.toLocaleString('en-US').padStart(7)}`,
    ),
    '',
  ].join('\n'),
);
