// /metrics with workers > 1. The primary asks every worker that has said hello for its
// registry as JSON (over the same typed IPC as everything else, so a worker still booting is
// not waited for) and merges them with prom-client's AggregatorRegistry.aggregate, family by
// family with each metric's `aggregator` (counters and histograms sum; identity expiry is the
// minimum, build info the first). The few families only the primary knows (renewals, reloads,
// build info, the workers themselves) come from its own registry; every family comes from one
// side only, so no name appears twice.

import client from 'prom-client';
import { negotiateMetrics } from '../metrics/registry.js';
import type { MetricsJson } from './messages.js';

/** Counted in the primary only: its renewal loop and reloads; the workers' copies are not exported. */
const PRIMARY_FAMILIES = ['meshcar_build_info', 'meshcar_identity_renewals_total', 'meshcar_config_reloads_total'] as const;

/** In a worker: leave the primary's families out of what it hands over for aggregation. */
export function exportForAggregation(registry: client.Registry): void {
  for (const name of PRIMARY_FAMILIES) registry.removeSingleMetric(name);
  // the lag measured at a scrape, per worker: the worst one, not a sum of delays
  const lag = registry.getSingleMetric('nodejs_eventloop_lag_seconds') as { aggregator?: client.Aggregator } | undefined;
  if (lag) lag.aggregator = 'max';
}

export class ClusterMetrics {
  private readonly registry = new client.Registry();
  readonly restarts = new client.Counter({
    name: 'meshcar_workers_restarts_total',
    help: 'Worker processes restarted after dying unexpectedly (not during a drain); workers > 1 only.',
    registers: [this.registry],
  });

  /** `primary`: the primary's own registry (its families are picked from it); `live`: workers alive now. */
  constructor(private readonly primary: client.Registry, live: () => number) {
    new client.Gauge({
      name: 'meshcar_workers',
      help: 'Worker processes alive now (workers > 1; the primary that owns identity and admin is not counted).',
      registers: [this.registry],
      collect() {
        this.set(live());
      },
    });
    this.restarts.inc(0);
  }

  /** The page: the primary's families, then the workers' registries (`workers`) aggregated. */
  async render(workers: readonly MetricsJson[], accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const own = PRIMARY_FAMILIES.filter((name) => this.primary.getSingleMetric(name) !== undefined).map((name) => this.primary.getSingleMetricAsString(name));
    const aggregated = client.AggregatorRegistry.aggregate(workers as MetricsJson[]);
    const parts = await Promise.all([this.registry.metrics(), ...own, aggregated.metrics()]);
    return negotiateMetrics(`${parts.map((p) => p.trimEnd()).filter((p) => p !== '').join('\n\n')}\n`, accept);
  }
}
