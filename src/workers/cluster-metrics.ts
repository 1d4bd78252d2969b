// /metrics with workers > 1. The primary asks every worker that has said hello for its
// registry as JSON (over the same typed IPC as everything else, so a worker still booting is
// not waited for) and merges them with prom-client's AggregatorRegistry.aggregate, family by
// family with each metric's `aggregator` (counters and histograms sum; identity expiry is the
// minimum, build info the first, the fd limit and event-loop lag the maximum, the start time the
// oldest worker's). What workers that
// are gone had counted is carried over by the primary (departed-counts.ts) so no total goes
// down; a worker that does not answer a scrape in time is counted in meshcar_workers_unresponsive
// and its last counts stand in. The few families only the primary knows (renewals, reloads,
// build info, the workers themselves) come from its own registry; every family comes from one
// side only, so no name appears twice. One family is both sides': the log lines dropped, which
// each process (the primary too: its reload errors, renewals) counts of its own stdout; the
// primary's count is one more input to the workers' sum. The sums are floats, whose order
// changes when a worker exits: every cumulative series is held at or above its last published
// value (counter-floors.ts), so no float rounding reads as a counter reset.

import client from 'prom-client';
import { negotiateMetrics } from '../metrics/openmetrics.js';
import type { MetricsJson } from './messages.js';
import { CounterFloors, type FloorFamily } from './counter-floors.js';

/** Counted in the primary only: its renewal loop, its SVID saves and reloads; the workers' copies are not exported. */
const PRIMARY_FAMILIES = ['meshcar_build_info', 'meshcar_identity_renewals_total', 'meshcar_identity_persist_failures_total', 'meshcar_config_reloads_total'] as const;

/** Counted by every process, the primary included: the primary's value is summed with the workers'. */
const SHARED_FAMILIES = ['meshcar_log_lines_dropped_total'] as const;

/** In a worker: leave the primary's families out of what it hands over for aggregation. */
export function exportForAggregation(registry: client.Registry): void {
  for (const name of PRIMARY_FAMILIES) registry.removeSingleMetric(name);
  for (const [name, aggregator] of PER_PROCESS) {
    const metric = registry.getSingleMetric(name) as { aggregator?: client.Aggregator } | undefined;
    if (metric) metric.aggregator = aggregator;
  }
}

/**
 * Process gauges that mean nothing summed: the lag measured at a scrape (the worst one, not a
 * sum of delays), the fd limit each worker has (the same for all: not N times it), the Node
 * version (one label, value 1), the start time (the oldest worker's: a sum of Unix times is a
 * date centuries ahead).
 */
const PER_PROCESS: ReadonlyArray<[string, client.Aggregator]> = [
  ['nodejs_eventloop_lag_seconds', 'max'],
  ['process_max_fds', 'max'],
  ['nodejs_version_info', 'first'],
  ['process_start_time_seconds', 'min'],
];

export class ClusterMetrics {
  private readonly registry = new client.Registry();
  readonly restarts = new client.Counter({
    name: 'meshcar_workers_restarts_total',
    help: 'Worker processes restarted after dying unexpectedly or being killed for missing their health checks (not during a drain or a reload); workers > 1 only.',
    registers: [this.registry],
  });

  private readonly unresponsive = new client.Gauge({
    name: 'meshcar_workers_unresponsive',
    help: 'Workers alive that did not answer this scrape in time (stopped or stuck); their last counts stand in. workers > 1 only.',
    registers: [this.registry],
  });

  /** The last published value of every cumulative series of the aggregated families. */
  private readonly floors = new CounterFloors();

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
  async render(workers: readonly MetricsJson[], accept: string | undefined, unresponsive: number): Promise<{ contentType: string; body: string }> {
    this.unresponsive.set(unresponsive);
    const own = PRIMARY_FAMILIES.filter((name) => this.primary.getSingleMetric(name) !== undefined).map((name) => this.primary.getSingleMetricAsString(name));
    // the primary's share of the shared families: one more registry in the sum (its help and
    // aggregator are the workers' too, so the merge is the same)
    const shared = await Promise.all(SHARED_FAMILIES.map((name) => this.primary.getSingleMetric(name)?.get()));
    const mine = shared.filter((metric) => metric !== undefined) as MetricsJson;
    const aggregated = client.AggregatorRegistry.aggregate([...(workers as MetricsJson[]), mine]);
    // before any await: pages are floored in the order they are published. The registry's
    // metrics are wrappers sharing the aggregated samples, which its metrics() renders
    this.floors.hold(aggregated.getMetricsAsArray() as unknown as FloorFamily[]);
    const parts = await Promise.all([this.registry.metrics(), ...own, aggregated.metrics()]);
    return negotiateMetrics(`${parts.map((p) => p.trimEnd()).filter((p) => p !== '').join('\n\n')}\n`, accept);
  }

  /** metrics.requests turned off: those families count from zero again (departed-counts.ts forgets them too). */
  forget(names: ReadonlySet<string>): void {
    this.floors.forget(names);
  }
}
