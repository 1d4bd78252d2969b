// The per-upstream series of the outbound (sessions, streams in flight, ejections, circuit-open
// refusals, addresses, failed lookups): one label child per upstream, made at its first event
// and kept, so an event costs a map lookup. A reload that removes an upstream takes its address
// and ejection gauges at once (0 would read as "an upstream with no address") and its session and stream
// gauges once the observer that counts them says they are back at 0 (live-observers.ts: a
// retired pool may still hold sessions and streams under the name until its last request ends).
// Its counters stay, as the other counters do (with workers the primary adds a dead worker's
// counts to the live ones; removed, the page fell to that kept count alone, a drop Prometheus
// reads as a counter reset).

import type { Counter } from 'prom-client';
import type { Metrics } from './registry.js';

type GaugeChild = ReturnType<Metrics['upstreamSessions']['labels']>;

/** What the sessions gauge (prom-client's) and the streams gauge (request-families.ts) share. */
interface DeltaGauge {
  labels(upstream: string): { inc(delta: number): void };
  remove(upstream: string): void;
}

export class UpstreamSeries {
  private readonly sessions = new Map<string, { inc(delta: number): void }>();
  private readonly streams = new Map<string, { inc(delta: number): void }>();
  private readonly ejectionCounters = new Map<string, Counter.Internal>();
  private readonly ejectedGauges = new Map<string, GaugeChild>();
  private readonly circuitCounters = new Map<string, Counter.Internal>();
  private readonly addressGauges = new Map<string, GaugeChild>();
  private readonly lookupFailureCounters = new Map<string, Counter.Internal>();

  constructor(private readonly metrics: Metrics) {}

  /** Every child forgotten (metrics.requests turned off: the families are emptied by the caller). */
  clear(): void {
    for (const cache of [this.sessions, this.streams, this.ejectionCounters, this.ejectedGauges, this.circuitCounters, this.addressGauges, this.lookupFailureCounters]) cache.clear();
  }

  sessionsChanged(upstream: string, delta: number): void {
    this.change(this.sessions, this.metrics.upstreamSessions, upstream, delta);
  }

  streamsChanged(upstream: string, delta: number): void {
    this.change(this.streams, this.metrics.upstreamActiveStreams, upstream, delta);
  }

  private change(held: Map<string, { inc(delta: number): void }>, family: DeltaGauge, upstream: string, delta: number): void {
    let child = held.get(upstream);
    if (child === undefined) {
      child = family.labels(upstream);
      held.set(upstream, child);
    }
    child.inc(delta);
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
    let gauge = this.addressGauges.get(upstream);
    if (gauge === undefined) {
      gauge = this.metrics.upstreamEndpoints.labels(upstream);
      this.addressGauges.set(upstream, gauge);
      // its lookup failures at 0 from its first count: a series born at 1 has no increase()
      this.lookupFailed(upstream, 0);
    }
    gauge.set(endpoints);
  }

  /**
   * A reload removed the upstream: its address and ejection gauges go now (its retired
   * balancer reports no more ejections; kept, the last count stood for good, a 0 reading as an
   * upstream with none ejected).
   */
  removedUpstream(upstream: string): void {
    if (this.addressGauges.delete(upstream)) this.metrics.upstreamEndpoints.remove(upstream);
    if (this.ejectedGauges.delete(upstream)) this.metrics.ejectedEndpoints.remove(upstream);
  }

  /** A removed upstream's last session and stream have closed: its session and stream gauges go. */
  unused(upstream: string): void {
    if (this.sessions.delete(upstream)) this.metrics.upstreamSessions.remove(upstream);
    if (this.streams.delete(upstream)) this.metrics.upstreamActiveStreams.remove(upstream);
  }
}
