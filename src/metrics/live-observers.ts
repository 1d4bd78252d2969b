// The data plane's observers as the running config asks for them: the TLS failure log always,
// request metrics with metrics.requests, the access log with log.access. The data plane is given
// one forwarding observer for its whole life; a reload that turns either key on or off switches
// what it forwards to.

import type { Logger } from 'pino';
import { AccessLog } from './access-log.js';
import { NO_OBSERVER, type Direction, type RequestRecord, type TlsFailureDetail, type TlsFailureReason, type TrafficObserver } from './traffic.js';
import { TrafficMetrics } from './traffic-metrics.js';

type ObserverMethod = (...args: unknown[]) => unknown;

/**
 * The one observer the data plane is given for its whole life; a reload swaps the observers it
 * forwards to (request metrics on or off, access log on or off), so no listener or session is
 * rebuilt. It counts open upstream sessions and streams itself, and keeps each upstream's
 * ejected endpoints and known addresses, so a swap hands the gauges over exactly. Methods beyond the four every
 * observer has (the optional ones, such as retry and abuse counters) are forwarded by name to
 * whichever targets implement them.
 */
export class ForwardingObserver {
  private readonly sessions = new Map<string, number>();
  private readonly streams = new Map<string, number>();
  /** Endpoints ejected now, per upstream (an absolute count, as the balancer reports it). */
  private readonly ejected = new Map<string, number>();
  /** Addresses known now, per upstream (told at lookups and reloads only, so kept for a swap). */
  private readonly addresses = new Map<string, number>();
  /** Upstreams a reload removed that still have sessions or streams (a retired pool's): unused once both are at 0. */
  private readonly removedInUse = new Set<string>();
  /**
   * Requests finished since start, whatever the observers are: GET /workers' `requests` (a
   * worker's meshcar_requests_total is empty with metrics.requests: false). One number.
   */
  finishedRequests = 0;

  constructor(private targets: readonly TrafficObserver[], methodNames: Iterable<string>) {
    for (const key of methodNames) {
      if (key === 'constructor' || key in this) continue;
      Object.defineProperty(this, key, {
        value: (...args: unknown[]) => {
          for (const target of this.targets) (target as unknown as Record<string, ObserverMethod | undefined>)[key]?.(...args);
        },
      });
    }
  }

  /** This object, as the data plane sees it. */
  asObserver(): TrafficObserver {
    return this as unknown as TrafficObserver;
  }

  swap(next: readonly TrafficObserver[]): void {
    const previous = this.targets;
    // the old targets' gauges go back to zero and the new ones' start from what is open now
    for (const [upstream, n] of this.sessions) {
      if (n === 0) continue;
      for (const target of previous) target.upstreamSessionsChanged(upstream, -n);
      for (const target of next) target.upstreamSessionsChanged(upstream, n);
    }
    for (const [upstream, n] of this.streams) {
      if (n === 0) continue;
      for (const target of previous) target.upstreamStreamsChanged(upstream, -n);
      for (const target of next) target.upstreamStreamsChanged(upstream, n);
    }
    // ejected endpoints stay out across a swap: the new targets hear the count at once (turned
    // on again, the gauge read nothing until the balancer's next change, maybe minutes later)
    for (const [upstream, n] of this.ejected) {
      for (const target of next) target.ejectedEndpointsChanged?.(upstream, n);
    }
    // the addresses change only at a lookup or a reload: turned on again, the gauge would be
    // missing for a static upstream until the next reload
    for (const [upstream, n] of this.addresses) {
      for (const target of next) target.upstreamEndpointsChanged?.(upstream, n);
    }
    this.targets = next;
  }

  upstreamEndpointsChanged(upstream: string, endpoints: number): void {
    this.removedInUse.delete(upstream); // the name is in use again
    this.addresses.set(upstream, endpoints);
    for (const target of this.targets) target.upstreamEndpointsChanged?.(upstream, endpoints);
  }

  upstreamRemoved(upstream: string): void {
    this.addresses.delete(upstream);
    this.removedInUse.add(upstream);
    this.unusedIfIdle(upstream);
    for (const target of this.targets) target.upstreamRemoved?.(upstream);
  }

  requestFinished(record: RequestRecord): void {
    this.finishedRequests++;
    for (const target of this.targets) target.requestFinished(record);
  }

  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail): void {
    for (const target of this.targets) target.tlsHandshakeFailed(direction, reason, detail);
  }

  upstreamSessionsChanged(upstream: string, delta: number): void {
    this.sessions.set(upstream, (this.sessions.get(upstream) ?? 0) + delta);
    for (const target of this.targets) target.upstreamSessionsChanged(upstream, delta);
    // one size check on the request path: removed names are few and rare
    if (this.removedInUse.size > 0) this.unusedIfIdle(upstream);
  }

  ejectedEndpointsChanged(upstream: string, ejected: number): void {
    if (ejected === 0) this.ejected.delete(upstream);
    else this.ejected.set(upstream, ejected);
    for (const target of this.targets) target.ejectedEndpointsChanged?.(upstream, ejected);
  }

  upstreamStreamsChanged(upstream: string, delta: number): void {
    this.streams.set(upstream, (this.streams.get(upstream) ?? 0) + delta);
    for (const target of this.targets) target.upstreamStreamsChanged(upstream, delta);
    if (this.removedInUse.size > 0) this.unusedIfIdle(upstream);
  }

  /**
   * A removed upstream with no session or stream left: its counts and the targets' session and
   * stream gauges go (a retired pool may hold some until its last request ends). Kept, every
   * name a reload ever removed or renamed left two series at 0 and two entries here, for good.
   */
  private unusedIfIdle(upstream: string): void {
    if (!this.removedInUse.has(upstream) || (this.sessions.get(upstream) ?? 0) !== 0 || (this.streams.get(upstream) ?? 0) !== 0) return;
    this.removedInUse.delete(upstream);
    this.sessions.delete(upstream);
    this.streams.delete(upstream);
    for (const target of this.targets) target.upstreamUnused?.(upstream);
  }
}

/** The two config keys the observers follow: metrics.requests and log.access. */
export interface ObserverSettings {
  readonly requests: boolean;
  readonly access: boolean;
}

export class LiveObservers {
  private readonly forwarding: ForwardingObserver;
  /** metrics.requests as the running config has it. */
  private requests: boolean;

  constructor(private readonly parts: { readonly tlsFailures: TrafficObserver; readonly traffic: TrafficMetrics; readonly logger: Logger }, settings: ObserverSettings) {
    this.requests = settings.requests;
    if (settings.requests) parts.traffic.zeroReasonSeries();
    // every method of the observer interface: the ones all observers have, and the optional
    // ones the request metrics and the access log implement
    const methods = new Set([...Object.keys(NO_OBSERVER), ...Object.getOwnPropertyNames(TrafficMetrics.prototype), ...Object.getOwnPropertyNames(AccessLog.prototype)]);
    this.forwarding = new ForwardingObserver(this.build(settings), methods);
  }

  /** Requests finished since start, with or without metrics.requests. */
  get finishedRequests(): number {
    return this.forwarding.finishedRequests;
  }

  /** The observer the data plane is given. */
  get observer(): TrafficObserver {
    return this.forwarding.asObserver();
  }

  switchTo(settings: ObserverSettings): void {
    this.forwarding.swap(this.build(settings));
    // turned off: the families go empty, as they are when off from the start
    if (this.requests && !settings.requests) this.parts.traffic.clear();
    if (!this.requests && settings.requests) this.parts.traffic.zeroReasonSeries();
    this.requests = settings.requests;
  }

  /**
   * metrics.requests: false (the benchmark's "metrics off") leaves the traffic families out of
   * the hot path entirely; process, identity and build metrics are still exported.
   */
  private build(settings: ObserverSettings): TrafficObserver[] {
    const { tlsFailures, traffic, logger } = this.parts;
    const observers: TrafficObserver[] = [tlsFailures];
    if (settings.requests) observers.push(traffic);
    if (settings.access) observers.push(new AccessLog(logger, settings.requests ? (record) => traffic.routeOf(record) : undefined));
    return observers;
  }
}
