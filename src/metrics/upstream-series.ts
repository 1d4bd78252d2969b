// The per-upstream series of the outbound (sessions, streams in flight, ejections, circuit-open
// refusals, addresses, failed lookups): one label child per upstream, made at its first event
// and kept, so an event costs a map lookup. A reload that removes an upstream takes its address
// gauge at once (0 would read as "an upstream with no address") and its session and stream
// gauges once they are back at 0 (a retired pool may still hold sessions and streams under the
// name until its last request ends): kept, renaming upstreams grew /metrics by two series per
// name for good. Its counters stay, as the other counters do (with workers the primary adds a
// dead worker's counts to the live ones; removed, the page fell to that kept count alone, a
// drop Prometheus reads as a counter reset).

import type { Counter } from 'prom-client';
import type { Metrics } from './registry.js';

type GaugeChild = ReturnType<Metrics['upstreamSessions']['labels']>;

/** What the sessions gauge (prom-client's) and the streams gauge (request-families.ts) share. */
interface DeltaGauge {
  labels(upstream: string): { inc(delta: number): void };
  remove(upstream: string): void;
}

/** A gauge child per upstream, with the value it holds (prom-client's child does not tell it). */
interface Held {
  readonly child: { inc(delta: number): void };
  value: number;
}

export class UpstreamSeries {
  private readonly sessions = new Map<string, Held>();
  private readonly streams = new Map<string, Held>();
  private readonly ejectionCounters = new Map<string, Counter.Internal>();
  private readonly ejectedGauges = new Map<string, GaugeChild>();
  private readonly circuitCounters = new Map<string, Counter.Internal>();
  private readonly addressGauges = new Map<string, GaugeChild>();
  private readonly lookupFailureCounters = new Map<string, Counter.Internal>();
  /** Upstreams a reload removed whose session or stream gauges are not yet back at 0. */
  private readonly removed = new Set<string>();

  constructor(private readonly metrics: Metrics) {}

  /** Every child forgotten (metrics.requests turned off: the families are emptied by the caller). */
  clear(): void {
    for (const cache of [this.sessions, this.streams, this.ejectionCounters, this.ejectedGauges, this.circuitCounters, this.addressGauges, this.lookupFailureCounters, this.removed]) cache.clear();
  }

  sessionsChanged(upstream: string, delta: number): void {
    this.change(this.sessions, this.metrics.upstreamSessions, upstream, delta);
  }

  streamsChanged(upstream: string, delta: number): void {
    this.change(this.streams, this.metrics.upstreamActiveStreams, upstream, delta);
  }

  private change(held: Map<string, Held>, family: DeltaGauge, upstream: string, delta: number): void {
    let entry = held.get(upstream);
    if (entry === undefined) {
      entry = { child: family.labels(upstream), value: 0 };
      held.set(upstream, entry);
    }
    entry.child.inc(delta);
    entry.value += delta;
    if (entry.value === 0 && this.removed.has(upstream)) this.dropIfIdle(upstream);
  }

  outlierEjected(upstream: string): void {
    this.counter(this.ejectionCounters, this.metrics.outlierEjections, upstream).inc();
  }

  circuitOpened(upstream: string): void {
    this.counter(this.circuitCounters, this.metrics.circuitOpen, upstream).inc();
  }

  lookupFailed(upstream: string, by: number): void {
    this.counter(this.lookupFailureCounters, this.metrics.upstreamLookupFailures, upstream).inc(by);
  }

  private counter(cache: Map<string, Counter.Internal>, family: Metrics['circuitOpen'], upstream: string): Counter.Internal {
    let counter = cache.get(upstream);
    if (counter === undefined) {
      counter = family.labels(upstream);
      cache.set(upstream, counter);
    }
    return counter;
  }

  ejectedChanged(upstream: string, ejected: number): void {
    let gauge = this.ejectedGauges.get(upstream);
    if (gauge === undefined) {
      gauge = this.metrics.ejectedEndpoints.labels(upstream);
      this.ejectedGauges.set(upstream, gauge);
    }
    gauge.set(ejected);
  }

  endpointsChanged(upstream: string, endpoints: number): void {
    // a name in use again is not removed any more
    this.removed.delete(upstream);
    let gauge = this.addressGauges.get(upstream);
    if (gauge === undefined) {
      gauge = this.metrics.upstreamEndpoints.labels(upstream);
      this.addressGauges.set(upstream, gauge);
      // its lookup failures at 0 from its first count: a series born at 1 has no increase()
      this.lookupFailed(upstream, 0);
    }
    gauge.set(endpoints);
  }

  /** A reload removed the upstream: its address gauge goes now, its session and stream gauges once back at 0. */
  removedUpstream(upstream: string): void {
    if (this.addressGauges.delete(upstream)) this.metrics.upstreamEndpoints.remove(upstream);
    this.removed.add(upstream);
    this.dropIfIdle(upstream);
  }

  private dropIfIdle(upstream: string): void {
    if ((this.sessions.get(upstream)?.value ?? 0) !== 0 || (this.streams.get(upstream)?.value ?? 0) !== 0) return;
    this.removed.delete(upstream);
    if (this.sessions.delete(upstream)) this.metrics.upstreamSessions.remove(upstream);
    if (this.streams.delete(upstream)) this.metrics.upstreamActiveStreams.remove(upstream);
  }
}
