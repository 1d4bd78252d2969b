// The primary's record of what departed workers counted (src/workers/departed-counts.ts), fed
// with real prom-client registries' JSON as workers send it: counters and summed histograms
// add up across departed workers, gauges are not kept, /endpoints rows add up, and the record
// is bounded (past the bound a new sample or row is not kept, the kept ones still add up).

import t from 'tap';
import client from 'prom-client';
import { DepartedCounts } from '../../src/workers/departed-counts.js';
import type { WorkerEndpoints } from '../../src/workers/messages.js';

/** A worker's registry as JSON: requests by route, one duration histogram, one gauge. */
async function workerJson(requests: Record<string, number>, durations: number[], gauge: number) {
  const registry = new client.Registry();
  const counter = new client.Counter({ name: 'demo_requests_total', help: 'requests', labelNames: ['route'], registers: [registry] });
  const histogram = new client.Histogram({ name: 'demo_duration_seconds', help: 'durations', buckets: [0.5, 1], registers: [registry] });
  new client.Gauge({ name: 'demo_open', help: 'open now', registers: [registry] }).set(gauge);
  for (const [route, n] of Object.entries(requests)) counter.inc({ route }, n);
  for (const d of durations) histogram.observe(d);
  return registry.getMetricsAsJSON();
}

function sample(base: Awaited<ReturnType<typeof workerJson>>, family: string, metricName?: string, labels: Record<string, string | number> = {}): number | undefined {
  const values = base.find((f) => f.name === family)?.values ?? [];
  return values.find((v) => (v as { metricName?: string }).metricName === metricName && JSON.stringify(v.labels) === JSON.stringify(labels))?.value;
}

const rows = (counts: Record<string, number>): WorkerEndpoints => ({
  endpoints: Object.entries(counts).map(([route, count]) => ({ direction: 'inbound', peer: 'probe', method: 'GET', route, count, errors: 0, lastSeen: '2026-01-01T00:00:00.000Z' }) as WorkerEndpoints['endpoints'][number]),
  discovery: [],
});

t.test("departed workers' counters and histograms add up; gauges are not kept", async (t) => {
  const departed = new DepartedCounts();
  departed.sawMetrics(1, await workerJson({ a: 3, b: 2 }, [0.1, 0.7], 5));
  departed.sawMetrics(2, await workerJson({ a: 1 }, [2], 7));
  t.same(departed.metrics(), [], 'nothing departed yet');
  t.notOk(departed.lastOf(1)?.some((f) => f.name === 'demo_open'), "a live worker's last counts hold no gauge");
  departed.departed(1);
  departed.departed(2);
  const base = departed.metrics();
  t.same([sample(base, 'demo_requests_total', undefined, { route: 'a' }), sample(base, 'demo_requests_total', undefined, { route: 'b' })], [4, 2], 'requests by route: 3+1 and 2');
  t.equal(sample(base, 'demo_duration_seconds', 'demo_duration_seconds_count'), 3, 'histogram count: 2+1');
  t.equal(sample(base, 'demo_duration_seconds', 'demo_duration_seconds_bucket', { le: 1 }), 2, 'bucket le=1: 2+0');
  t.equal(sample(base, 'demo_duration_seconds', 'demo_duration_seconds_bucket', { le: '+Inf' }), 3, 'bucket +Inf: 2+1');
  t.notOk(base.some((f) => f.name === 'demo_open'), 'the gauge is not carried over');
  t.equal(departed.lastOf(1), undefined, 'a departed worker has no last counts of its own any more');
  const aggregated = await client.AggregatorRegistry.aggregate([await workerJson({ a: 10 }, [], 1), base]).getMetricsAsJSON();
  t.equal(sample(aggregated, 'demo_requests_total', undefined, { route: 'a' }), 14, 'aggregated with a live worker: 10 + 4');

  departed.sawEndpoints(3, rows({ '/x': 2, '/y': 1 }));
  departed.departed(3);
  departed.sawEndpoints(4, rows({ '/x': 5 }));
  departed.departed(4);
  t.same(departed.endpoints().endpoints.map((r) => [r.route, r.count]), [['/x', 7], ['/y', 1]], '/endpoints rows add up');
});

t.test('the record is bounded: past the bound a new sample is not kept, the kept ones still add up', async (t) => {
  // one worker's JSON holds 2 request samples and 5 histogram samples (3 buckets, sum, count)
  const departed = new DepartedCounts(8);
  departed.sawMetrics(1, await workerJson({ a: 1, b: 1 }, [0.1], 0));
  departed.departed(1);
  departed.sawMetrics(2, await workerJson({ a: 1, c: 1, d: 1 }, [0.1], 0));
  departed.departed(2);
  const base = departed.metrics();
  const routes = base.find((f) => f.name === 'demo_requests_total')?.values.map((v) => [v.labels.route, v.value]);
  t.same(routes, [['a', 2], ['b', 1], ['c', 1]], 'a kept sample adds up (a: 2); one new sample fits (c), the next (d) is not kept');
  t.equal(sample(base, 'demo_duration_seconds', 'demo_duration_seconds_count'), 2, 'the histogram still adds up');

  departed.sawEndpoints(3, rows({ '/x': 1, '/y': 3 }));
  departed.departed(3);
  departed.sawEndpoints(4, rows(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`/z${i}`, 2]))));
  departed.departed(4);
  const kept = departed.endpoints().endpoints;
  t.equal(kept.length, 8, '/endpoints rows: at most the bound');
  t.equal(kept[0]?.route, '/y', 'the most used row is kept first');
});

t.test("at the bound a histogram series is kept whole or not at all: the aggregated page's buckets stay cumulative and end at its count", async (t) => {
  // room for 4 samples: the request sample and three of the histogram's five (3 buckets, sum, count)
  const departed = new DepartedCounts(4);
  departed.sawMetrics(1, await workerJson({ a: 1 }, [0.1, 0.7, 2], 0));
  departed.departed(1);
  const base = departed.metrics();
  const histogram = base.find((f) => f.name === 'demo_duration_seconds')?.values ?? [];
  t.ok(histogram.length === 0 || histogram.length === 5, `the histogram series whole or absent (${histogram.length} samples kept)`);
  const live = await workerJson({ a: 1 }, [0.1], 0);
  const page = await client.AggregatorRegistry.aggregate([live, base]).metrics();
  const buckets = [...page.matchAll(/^demo_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => Number(m[2]));
  const count = Number(/^demo_duration_seconds_count (\S+)$/m.exec(page)?.[1]);
  t.same(buckets, [...buckets].sort((x, y) => x - y), `buckets cumulative: ${buckets.join(', ')}`);
  t.equal(buckets.at(-1), count, 'the +Inf bucket is the count');
  t.equal(sample(base, 'demo_requests_total', undefined, { route: 'a' }), 1, 'the request sample that fits is kept');
});
