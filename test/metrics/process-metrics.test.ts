// meshcar's process metrics (src/metrics/prom-parts.ts) are prom-client's default metrics
// without loading prom-client's index (and, through its CPU counters, @opentelemetry/api): the
// same families, in the same order, with the same help, type, label names and cluster
// aggregator as collectDefaultMetrics registers; the CPU counters count.

import t from 'tap';
import client from 'prom-client';
import { Metrics } from '../../src/metrics/registry.js';

/** Every non-meshcar family's HELP and TYPE lines, and each sample's name and label names. */
function shape(text: string): { heads: string[]; series: string[] } {
  const lines = text.split('\n').filter((l) => l !== '' && !/^(# (HELP|TYPE) )?meshcar_/.test(l));
  const heads = lines.filter((l) => l.startsWith('# '));
  const series = [...new Set(lines.filter((l) => !l.startsWith('#')).map((l) => l.replace(/="[^"]*"/g, '').replace(/ \S+$/, '')))];
  return { heads, series };
}

t.test('the families of collectDefaultMetrics, as meshcar keeps them', async (t) => {
  const ours = new Metrics();
  const reference = new client.Registry();
  client.collectDefaultMetrics({ register: reference, eventLoopMonitoringPrecision: 60_000 });
  // what Metrics drops from prom-client's set (promtool-rejected gauges, the sampled lag summary)
  for (const metric of reference.getMetricsAsArray()) {
    if (ours.registry.getSingleMetric(metric.name) === undefined) reference.removeSingleMetric(metric.name);
  }
  const [a, b] = [shape(await ours.render()), shape(await reference.metrics())];
  t.ok(b.heads.length > 30, `${b.heads.length / 2} families compared`);
  t.same(a.heads, b.heads, 'same families, order, help and type');
  t.same(a.series, b.series, 'same series names and label names');
  for (const metric of reference.getMetricsAsArray()) {
    const mine = ours.registry.getSingleMetric(metric.name) as unknown as { aggregator: string };
    t.equal(mine.aggregator, (metric as unknown as { aggregator: string }).aggregator, `${metric.name}: same cluster aggregator`);
  }
  t.ok(ours.registry.getSingleMetric('process_cpu_user_seconds_total'), 'process_cpu_user_seconds_total is there');
  ours.registry.clear();
});

t.test('the CPU counters count this process', async (t) => {
  const metrics = new Metrics();
  // one render per reading: each render collects the three counters at once
  const read = async () => {
    const text = await metrics.render();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    return { user: value('process_cpu_user_seconds_total'), system: value('process_cpu_system_seconds_total'), total: value('process_cpu_seconds_total') };
  };
  const before = await read();
  const until = process.cpuUsage().user + 60_000; // 60 ms of user CPU
  while (process.cpuUsage().user < until) Math.sqrt(Math.random());
  const after = await read();
  t.ok(after.user - before.user >= 0.05, `user CPU grew by ${(after.user - before.user).toFixed(3)} s`);
  t.ok(after.total >= after.user && Math.abs(after.total - after.user - after.system) < 1e-6, 'total = user + system');
});
