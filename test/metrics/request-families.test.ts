// The per-request families (src/metrics/request-families.ts) against prom-client's own Counter
// and Histogram: the same observations must give the same /metrics text, the same aggregation
// across workers, and the same reset; a wrong label count is refused.

import t from 'tap';
import client from 'prom-client';
import fc from 'fast-check';
import { RequestCounter, RequestGauge, RequestHistogram } from '../../src/metrics/request-families.js';
import { DURATION_BUCKETS } from '../../src/metrics/registry.js';

const LABELS = ['direction', 'peer', 'method', 'route', 'code'] as const;

function pair() {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const help = 'h';
  return {
    ours,
    theirs,
    counter: new RequestCounter({ name: 'x_requests_total', help, labelNames: LABELS, registers: [ours] }),
    histogram: new RequestHistogram({ name: 'x_duration_seconds', help, labelNames: LABELS, buckets: DURATION_BUCKETS, registers: [ours] }),
    promCounter: new client.Counter({ name: 'x_requests_total', help, labelNames: LABELS, registers: [theirs] }),
    promHistogram: new client.Histogram({ name: 'x_duration_seconds', help, labelNames: LABELS, buckets: DURATION_BUCKETS, registers: [theirs] }),
  };
}

const labelValues = fc.tuple(fc.constantFrom('inbound', 'outbound'), fc.constantFrom('orders', 'pay"ments', 'a\\b'), fc.constantFrom('GET', 'POST'), fc.constantFrom('/orders/{id}', '/x\ny'), fc.constantFrom('200', '503'));
const observation = fc.record({ labels: labelValues, value: fc.oneof(fc.double({ min: 0, max: 20, noNaN: true }), fc.constantFrom(...DURATION_BUCKETS), fc.constant(0)) });

t.test('the same observations give the same /metrics text as prom-client', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
      const p = pair();
      for (const { labels, value } of observations) {
        p.counter.labels(...labels).inc();
        p.histogram.labels(...labels).observe(value);
        p.promCounter.labels(...labels).inc();
        p.promHistogram.labels(...labels).observe(value);
      }
      const [ours, theirs] = await Promise.all([p.ours.metrics(), p.theirs.metrics()]);
      return ours === theirs;
    }),
    { numRuns: 150 },
  );
  const p = pair();
  p.histogram.labels('inbound', 'orders', 'GET', '/orders/{id}', '200').observe(0.003);
  t.match(await p.ours.metrics(), /x_duration_seconds_bucket\{le="0\.005",direction="inbound",peer="orders",method="GET",route="\/orders\/\{id\}",code="200"\} 1/, 'a sample line, as prom-client prints it');
});

t.test('aggregated across registries (workers) like prom-client', async (t) => {
  const a = pair();
  const b = pair();
  for (const [p, n] of [[a, 3], [b, 5]] as const) {
    for (let i = 0; i < n; i++) {
      for (const fam of [p.counter, p.promCounter]) fam.labels('outbound', 'orders', 'GET', '/o', '200').inc();
      for (const fam of [p.histogram, p.promHistogram]) fam.labels('outbound', 'orders', 'GET', '/o', '200').observe(0.002 * i);
    }
  }
  const ours = client.AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
  const theirs = client.AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
  t.equal(await ours.metrics(), await theirs.metrics());
  t.match(await ours.metrics(), /x_requests_total\{direction="outbound",peer="orders",method="GET",route="\/o",code="200"\} 8/);
});

t.test('reset zeroes the series; a child held by a caller keeps counting', async (t) => {
  const p = pair();
  const child = p.counter.labels('inbound', 'orders', 'GET', '/', '200');
  const hist = p.histogram.labels('inbound', 'orders', 'GET', '/', '200');
  child.inc();
  hist.observe(1);
  p.ours.resetMetrics();
  t.match(await p.ours.metrics(), /x_requests_total\{[^}]*\} 0/);
  t.match(await p.ours.metrics(), /x_duration_seconds_count\{[^}]*\} 0/);
  child.inc();
  hist.observe(0.0001);
  t.match(await p.ours.metrics(), /x_requests_total\{[^}]*\} 1/);
  t.match(await p.ours.metrics(), /x_duration_seconds_bucket\{le="0.0005",[^}]*\} 1/);
});

t.test('label values must match the declared names; non-finite durations are not counted', async (t) => {
  const p = pair();
  t.throws(() => p.counter.labels('inbound', 'orders'), /expected 5 label values/);
  const hist = p.histogram.labels('inbound', 'orders', 'GET', '/', '200');
  hist.observe(Number.NaN);
  hist.observe(Number.POSITIVE_INFINITY);
  t.equal(hist.count, 0);
});

t.test('a gauge moved by deltas prints like prom-client\'s Gauge', async (t) => {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const gauge = new RequestGauge({ name: 'x_active', help: 'h', labelNames: ['upstream'] as const, registers: [ours] });
  const promGauge = new client.Gauge({ name: 'x_active', help: 'h', labelNames: ['upstream'] as const, registers: [theirs] });
  for (const delta of [1, 1, 1, -1, 1, -1]) {
    gauge.labels('orders').inc(delta);
    promGauge.labels('orders').inc(delta);
  }
  t.equal(await ours.metrics(), await theirs.metrics());
  t.match(await ours.metrics(), /# TYPE x_active gauge\nx_active\{upstream="orders"\} 2/);
});
