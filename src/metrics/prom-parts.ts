// prom-client's parts, required one by one. Its index also loads the Pushgateway (node:https,
// node:zlib), the Summary (tdigest), the cluster aggregator and every default metric, whose CPU
// counters require @opentelemetry/api for exemplars (51 modules, ~0.7 MB of heap): nothing a
// sidecar uses. These are the same module instances as the index's (one require cache), so
// prom-client's AggregatorRegistry (workers) takes these registries as its own.

import { createRequire } from 'node:module';
import type client from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry: typeof client.Registry = require('prom-client/lib/registry');
export const Counter: typeof client.Counter = require('prom-client/lib/counter');
export const Gauge: typeof client.Gauge = require('prom-client/lib/gauge');

type DefaultMetric = (registry: client.Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/** prom-client's default metrics in its own order, without processCpuTotal (see processCpu). */
const DEFAULT_METRICS = ['processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag', 'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc'];

/**
 * What prom-client's collectDefaultMetrics registers, same names, help, labels and aggregators.
 * The three process_cpu_* counters are made here: prom-client's module for them is the one that
 * requires @opentelemetry/api (for exemplars, which meshcar does not enable).
 */
export function collectProcessMetrics(registry: client.Registry, eventLoopMonitoringPrecision: number): void {
  processCpu(registry);
  for (const name of DEFAULT_METRICS) (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, { eventLoopMonitoringPrecision });
}

function processCpu(registry: client.Registry): void {
  let last = process.cpuUsage();
  const registers = [registry];
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    // one collect() reads the usage once for all three
    collect() {
      const now = process.cpuUsage();
      const userMicros = now.user - last.user;
      const systemMicros = now.system - last.system;
      last = now;
      user.inc(userMicros / 1e6);
      system.inc(systemMicros / 1e6);
      total.inc((userMicros + systemMicros) / 1e6);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers });
}
