// The floor under the primary's cumulative series (src/workers/counter-floors.ts): through the
// primary's own merge (DepartedCounts and ClusterMetrics), the reviewer's float counter
// 0.1 + 0.2 + 0.3 does not go one ulp down when worker 1 departs (it went 0.6000000000000001 ->
// 0.6, a counter reset to Prometheus) while a gauge is left as summed; and the floor itself:
// counters, histogram buckets/sum/count and summary sum/count are held, quantiles and gauges
// are not, a series gone from a page loses its floor, and forget() drops a family's floors.

import t from 'tap';
import client from 'prom-client';
import { ClusterMetrics } from '../../src/workers/cluster-metrics.js';
import { CounterFloors, type FloorFamily } from '../../src/workers/counter-floors.js';
import { DepartedCounts } from '../../src/workers/departed-counts.js';
import type { MetricsJson } from '../../src/workers/messages.js';

/** One worker's answer: a float counter and a gauge, both `value`. */
const answer = (value: number) =>
  [
    { name: 'demo_cpu_seconds_total', help: 'cpu', type: 'counter', aggregator: 'sum', values: [{ labels: {}, value }] },
    { name: 'demo_memory_bytes', help: 'memory', type: 'gauge', aggregator: 'sum', values: [{ labels: {}, value }] },
  ] as unknown as MetricsJson;

const valueOn = (page: string, name: string) => Number(page.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);

t.test('worker 1 of three (0.1, 0.2, 0.3) departs: the float counter is not published lower; the gauge is as summed', async (t) => {
  const departed = new DepartedCounts();
  const metrics = new ClusterMetrics(new client.Registry(), () => 3);
  const workers: Record<number, MetricsJson> = { 1: answer(0.1), 2: answer(0.2), 3: answer(0.3) };
  for (const id of [1, 2, 3]) departed.sawMetrics(id, workers[id] as MetricsJson);
  const before = (await metrics.render([answer(0.1), answer(0.2), answer(0.3), departed.metrics()], undefined, 0)).body;
  departed.departed(1);
  const after = (await metrics.render([answer(0.2), answer(0.3), departed.metrics()], undefined, 0)).body;
  t.equal(valueOn(before, 'demo_cpu_seconds_total'), 0.1 + 0.2 + 0.3, 'before: (0.1 + 0.2) + 0.3');
  t.equal(valueOn(after, 'demo_cpu_seconds_total'), valueOn(before, 'demo_cpu_seconds_total'), `after: still ${0.1 + 0.2 + 0.3}, not ${0.2 + 0.3 + 0.1}`);
  t.equal(valueOn(after, 'demo_memory_bytes'), 0.2 + 0.3, 'the gauge: the live workers summed (not held)');
});

/** One family of `type` with samples [metricName, labels, value]. */
const family = (name: string, type: string, samples: Array<[string | undefined, Record<string, string | number>, number]>): FloorFamily => ({
  name,
  type,
  values: samples.map(([metricName, labels, value]) => ({ labels, value, ...(metricName ? { metricName } : {}) })),
});

const values = (f: FloorFamily) => f.values.map((s) => s.value);

t.test('what is held: counters, histogram buckets/sum/count, summary sum/count; not quantiles or gauges', async (t) => {
  const floors = new CounterFloors();
  const page = (v: number) => [
    family('c_total', 'counter', [[undefined, { route: 'a', method: 'GET' }, v]]),
    family('h', 'histogram', [['h_bucket', { le: 1 }, v], ['h_bucket', { le: '+Inf' }, v], ['h_sum', {}, v], ['h_count', {}, v]]),
    family('s', 'summary', [[undefined, { quantile: 0.5 }, v], ['s_sum', {}, v], ['s_count', {}, v]]),
    family('g', 'gauge', [[undefined, {}, v]]),
  ];
  floors.hold(page(5));
  const lower = page(3);
  // the same labels in another order are the same series
  (lower[0] as { values: unknown[] }).values = [{ labels: { method: 'GET', route: 'a' }, value: 3 }];
  floors.hold(lower);
  t.same(lower.map(values), [[5], [5, 5, 5, 5], [3, 5, 5], [3]], 'held at 5 but the quantile and the gauge');
  const higher = page(7);
  floors.hold(higher);
  t.same(higher.map(values), [[7], [7, 7, 7, 7], [7, 7, 7], [7]], 'above the floor: as summed');
  t.equal(floors.size, 7, 'seven series have a floor');
});

t.test('a series gone from a page loses its floor; forget() drops a family', async (t) => {
  const floors = new CounterFloors();
  floors.hold([family('a_total', 'counter', [[undefined, { peer: 'x' }, 9], [undefined, { peer: 'y' }, 9]]), family('b_total', 'counter', [[undefined, {}, 9]])]);
  floors.hold([family('a_total', 'counter', [[undefined, { peer: 'y' }, 9]]), family('b_total', 'counter', [[undefined, {}, 9]])]);
  t.equal(floors.size, 2, 'peer x, absent from the second page, is not remembered');
  const back = [family('a_total', 'counter', [[undefined, { peer: 'x' }, 1], [undefined, { peer: 'y' }, 9]])];
  floors.hold(back);
  t.same(back.map(values), [[1, 9]], 'peer x back: starts anew at 1 (Prometheus saw it go stale)');
  floors.forget(new Set(['a_total']));
  const cleared = [family('a_total', 'counter', [[undefined, { peer: 'y' }, 0]])];
  floors.hold(cleared);
  t.same(cleared.map(values), [[0]], 'a forgotten family counts from zero');
});
