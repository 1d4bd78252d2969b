// The Prometheus side of the TrafficObserver: request counts, durations and errors per
// direction, peer, method and route, plus the /endpoints inventory. Label children are
// resolved once per route and status and kept, so a request costs a few map lookups and
// two increments, never a label-string join. Endpoints (route and method) are capped per
// direction and peer: one caller sending every method to 101 routes made 1,010 endpoints (36,000
// /metrics lines); past the cap a new endpoint is counted under route __other__ (method kept).
// Those caps bound one peer, not a page: a series budget for all peers together bounds that.
// What it keeps per peer and endpoint: traffic-entries.ts.

import type { Counter } from 'prom-client';
import type { Metrics } from './registry.js';
import type { DiscoveryRow } from './discovery.js';
import { methodLabel, RouteLabeler, DEFAULT_ROUTE_CAP, OTHER_ROUTE } from './route-templates.js';
import { codeLabel, isRegisteredStatus, responseKey, statusClass } from './status-labels.js';
import { countGrpc, grpcSlot } from './grpc-codes.js';
import { INBOUND_CONNECTION_REFUSALS, TLS_FAILURE_REASONS, type Direction, type Http2StreamErrorReason, type InboundConnectionRefusal, type RequestRecord, type SessionRejectReason, type TlsFailureReason, type TrafficObserver } from './traffic.js';
import { trafficFamilies } from './traffic-families.js';
import { UpstreamSeries } from './upstream-series.js';
import type { EndpointEntry, EndpointView, PeerEntry, StatusChildren, TrafficMetricsOptions } from './traffic-entries.js';

export type { EndpointView, TrafficMetricsOptions } from './traffic-entries.js';

/** Endpoints per direction and peer: 100 routes with three methods each (GET, PUT, DELETE) fit. */
export const DEFAULT_ENDPOINT_CAP = 300;


/** The peer label of every peer beyond the cap (the one entry made past it). */
const OTHER_PEER = '__other__';

/**
 * What the request families may print on /metrics, all peers and endpoints of this process (of
 * one worker, with workers) together, before a new series is counted on the overflow endpoint
 * of its direction and method (peer and route `__other__`, code kept), so totals stay whole:
 * lines (a duration series prints 17) and bytes (labels at their caps of 128 characters made
 * 100,000 lines 38 MB, over the 16 MB a worker's answer to the primary may hold). The caps per
 * peer allow far more: 1,000 callers with 30 endpoints each made 540,000 lines (82 MB, a render
 * of 0.36 s, and over a Prometheus `sample_limit`, which drops the whole scrape).
 */
export const DEFAULT_SERIES_BUDGET = 100_000;
export const DEFAULT_SERIES_BYTE_BUDGET = 12 * 1024 * 1024;

export class TrafficMetrics implements TrafficObserver {
  private readonly peers: Record<Direction, Map<string, PeerEntry>> = { inbound: new Map(), outbound: new Map() };
  private readonly upstreams: UpstreamSeries;
  /**
   * meshcar_request_errors_total and meshcar_schema_violations_total series made here, by their
   * labels (prom-client's families keep no count; they have no method label, so endpoints of
   * one route share them), and about how many bytes they print.
   */
  private readonly errorSeries = new Set<string>();
  private errorBytes = 0;

  /** Route templates per outbound upstream; setRoutes() changes them on a reload. */
  private readonly routesByUpstream: Map<string, readonly string[]>;

  constructor(private readonly metrics: Metrics, private readonly options: TrafficMetricsOptions = {}) {
    this.routesByUpstream = new Map(options.routesByUpstream ?? []);
    this.upstreams = new UpstreamSeries(metrics);
  }

  /**
   * metrics.requests turned off by a reload: every family this feeds is emptied, as if it had
   * been off from the start (a frozen last value would read as live), and /endpoints with them.
   * Turned on again, they count from zero (a counter reset, which Prometheus takes in its stride).
   */
  clear(): void {
    const { own, labelled } = trafficFamilies(this.metrics);
    for (const family of own) family.clear();
    // prom-client's reset() drops a labelled family's series
    for (const family of labelled) family.reset();
    for (const cache of [this.peers.inbound, this.peers.outbound]) cache.clear();
    this.upstreams.clear();
    this.errorSeries.clear();
    this.errorBytes = 0;
  }

  /** The request families' lines have reached the series budget: a new series goes to an overflow endpoint. */
  private overBudget(): boolean {
    const { requests, requestDuration, grpcResponses } = this.metrics;
    const lines = requests.lines + requestDuration.lines + grpcResponses.lines + this.errorSeries.size;
    const bytes = requests.textBytes + requestDuration.textBytes + grpcResponses.textBytes + this.errorBytes;
    return lines >= (this.options.seriesBudget ?? DEFAULT_SERIES_BUDGET) || bytes >= (this.options.seriesByteBudget ?? DEFAULT_SERIES_BYTE_BUDGET);
  }

  /**
   * The endpoint's meshcar_request_errors_total or meshcar_schema_violations_total child for
   * `value` (a reason, a kind): its own, or past the budget its overflow's, kept on the endpoint
   * for the next lookup. A series made is counted once per label set (the families have no
   * method label: endpoints of one route share them).
   */
  private reasonCounter(endpoint: EndpointEntry, held: 'errorsByReason' | 'violationsByKind', family: Metrics['requestErrors'], value: string): Counter.Internal {
    let counter = endpoint[held].get(value);
    if (counter !== undefined) return counter;
    const owner = this.seriesOwner(endpoint);
    counter = owner[held].get(value);
    if (counter === undefined) {
      counter = family.labels(owner.direction, owner.peer, owner.route, value);
      owner[held].set(value, counter);
      const key = `${held}\u0000${owner.direction}\u0000${owner.peer}\u0000${owner.route}\u0000${value}`;
      if (!this.errorSeries.has(key)) {
        this.errorSeries.add(key);
        this.errorBytes += key.length + 70;
      }
    }
    endpoint[held].set(value, counter);
    return counter;
  }

  /** Where a direction and method's series go past the budget; its own series are made regardless (methods × codes bound them). */
  private overflowEndpoint(direction: Direction, method: string): EndpointEntry {
    return this.newEndpoint(direction, this.peerEntry(direction, OTHER_PEER), OTHER_ROUTE, method);
  }

  /** `endpoint` itself, or past the budget (unless it is the overflow) its overflow: whose labels a new series gets. */
  private seriesOwner(endpoint: EndpointEntry): EndpointEntry {
    if (!this.overBudget() || (endpoint.peer === OTHER_PEER && endpoint.route === OTHER_ROUTE)) return endpoint;
    return this.overflowEndpoint(endpoint.direction, endpoint.method);
  }

  /**
   * Every (direction, reason) of meshcar_tls_handshake_failures_total and every reason of
   * meshcar_inbound_connections_refused_total at 0, when the families start counting (at start,
   * or metrics.requests turned on again): a series born at 1 has no increase to Prometheus, so
   * `increase(...[5m]) > 0` would miss each reason's first failure or refusal.
   */
  zeroReasonSeries(): void {
    for (const direction of ['inbound', 'outbound'] as const) for (const reason of TLS_FAILURE_REASONS) this.metrics.tlsHandshakeFailures.labels(direction, reason).inc(0);
    for (const reason of INBOUND_CONNECTION_REFUSALS) this.metrics.inboundConnectionsRefused.labels(reason).inc(0);
  }

  /** New route templates for an upstream (live reload): paths seen from now on are labelled by them. */
  setRoutes(upstream: string, templates: readonly string[] | undefined): void {
    const before = this.routesByUpstream.get(upstream);
    if (JSON.stringify(before ?? []) === JSON.stringify(templates ?? [])) return;
    if (templates) this.routesByUpstream.set(upstream, templates);
    else this.routesByUpstream.delete(upstream);
    const entry = this.peers.outbound.get(upstream);
    if (entry) entry.labeler = new RouteLabeler(templates, this.options.routeCap ?? DEFAULT_ROUTE_CAP, undefined, entry.labeler);
  }

  private peerEntry(direction: Direction, peer: string): PeerEntry {
    const peers = this.peers[direction];
    let entry = peers.get(peer);
    if (entry === undefined) {
      // peers are bounded too: an inbound caller set is as large as the mesh, not unbounded,
      // but a cap keeps a misbehaving mesh from exploding the series
      if (peers.size >= (this.options.peerCap ?? 1000) && peer !== OTHER_PEER) return this.peerEntry(direction, OTHER_PEER);
      const templates = direction === 'outbound' ? this.routesByUpstream.get(peer) : undefined;
      entry = { name: peer, labeler: new RouteLabeler(templates, this.options.routeCap ?? DEFAULT_ROUTE_CAP), routes: new Map(), endpoints: 0 };
      peers.set(peer, entry);
    }
    return entry;
  }

  /**
   * The route label a record gets (for the access log): its endpoint's, `__other__` past a
   * peer's endpoint cap or for an endpoint first seen past the series budget (the log said the
   * learned route there, which no series has). Past the budget, a code an endpoint had not
   * answered before is counted under the overflow's series while the log keeps the endpoint's
   * route. Called after requestFinished (the access log comes after this observer): the
   * endpoint is found, not made.
   */
  routeOf(record: RequestRecord): string {
    return this.endpoint(record).route;
  }

  private endpoint(record: RequestRecord): EndpointEntry {
    const peer = this.peerEntry(record.direction, record.peer);
    const route = record.schema?.route ?? peer.labeler.routeOf(record.path, record.grpcStatus !== undefined);
    const method = methodLabel(record.method);
    const known = peer.routes.get(route)?.get(method);
    if (known !== undefined) return known;
    if (this.overBudget()) return this.overflowEndpoint(record.direction, method);
    // a spec's operations and configured templates are bounded by the operator: never folded
    const capped = record.schema?.route === undefined && !peer.labeler.isConfigured(route) && peer.endpoints >= (this.options.endpointCap ?? DEFAULT_ENDPOINT_CAP);
    return this.newEndpoint(record.direction, peer, capped ? OTHER_ROUTE : route, method);
  }

  private newEndpoint(direction: Direction, peer: PeerEntry, route: string, method: string): EndpointEntry {
    let methods = peer.routes.get(route);
    if (methods === undefined) {
      methods = new Map();
      peer.routes.set(route, methods);
    }
    let endpoint = methods.get(method);
    if (endpoint === undefined) {
      endpoint = { direction, peer: peer.name, method, route, count: 0, errors: 0, violations: 0, documented: undefined, lastSeenMs: 0, byStatus: new Map(), byCode: new Map(), errorsByReason: new Map(), violationsByKind: new Map(), grpc: undefined };
      methods.set(method, endpoint);
      peer.endpoints++;
    }
    return endpoint;
  }

  requestFinished(record: RequestRecord): void {
    const endpoint = this.endpoint(record);
    let children = endpoint.byStatus.get(record.status);
    if (children === undefined) {
      const code = codeLabel(record.status);
      children = endpoint.byCode.get(code) ?? this.statusChildren(endpoint, code, record.status);
      // a status HTTP does not register is looked up by its class each time: an app or a callee
      // answering hundreds of odd statuses held an entry for each, per endpoint, and the
      // discovery document listed each (a review: 400 responses per operation, 15 KB)
      if (isRegisteredStatus(record.status)) endpoint.byStatus.set(record.status, children);
    }
    children.count.inc();
    children.duration.observe(record.durationSeconds);
    endpoint.count++;
    endpoint.lastSeenMs = Date.now();
    if (record.errorCode !== undefined) {
      endpoint.errors++;
      this.reasonCounter(endpoint, 'errorsByReason', this.metrics.requestErrors, record.errorCode).inc();
    }
    // the one check a request that is not gRPC pays
    if (record.grpcStatus !== undefined) {
      const cache = (endpoint.grpc ??= []);
      // the budget is asked only when a series would be made
      countGrpc(this.metrics.grpcResponses, cache, cache[grpcSlot(record.grpcStatus)] === undefined ? this.seriesOwner(endpoint) : endpoint, record.grpcStatus);
    }
    const schema = record.schema;
    if (schema !== undefined) this.schemaChecked(endpoint, schema.route !== undefined, schema.violation?.kind);
  }

  /** The series of a code the endpoint had not answered: its own, or past the budget its overflow's (kept on the endpoint too, found by one lookup next time). */
  private statusChildren(endpoint: EndpointEntry, code: string, status: number): StatusChildren {
    const owner = this.seriesOwner(endpoint);
    let children = owner.byCode.get(code);
    if (children === undefined) {
      const { direction, peer, method, route } = owner;
      children = {
        count: this.metrics.requests.labels(direction, peer, method, route, code),
        duration: this.metrics.requestDuration.labels(direction, peer, method, route, statusClass(status)),
      };
      owner.byCode.set(code, children);
    }
    if (owner !== endpoint) endpoint.byCode.set(code, children);
    return children;
  }

  private schemaChecked(endpoint: EndpointEntry, documented: boolean, kind: string | undefined): void {
    endpoint.documented = documented;
    if (kind === undefined) return;
    endpoint.violations++;
    this.reasonCounter(endpoint, 'violationsByKind', this.metrics.schemaViolations, kind).inc();
  }

  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason): void {
    this.metrics.tlsHandshakeFailures.labels(direction, reason).inc();
  }

  sessionRejected(direction: Direction, reason: SessionRejectReason): void {
    this.metrics.http2SessionsClosed.labels(direction, reason).inc();
  }

  inboundConnectionRefused(reason: InboundConnectionRefusal): void {
    this.metrics.inboundConnectionsRefused.labels(reason).inc();
  }

  streamError(direction: Direction, reason: Http2StreamErrorReason): void {
    this.metrics.http2StreamErrors.labels(direction, reason).inc();
  }

  upstreamSessionsChanged(upstream: string, delta: number): void {
    this.upstreams.sessionsChanged(upstream, delta);
  }

  upstreamStreamsChanged(upstream: string, delta: number): void {
    this.upstreams.streamsChanged(upstream, delta);
  }

  retryAttempted(upstream: string, reason: string, outcome: string): void {
    this.metrics.retries.labels(upstream, reason, outcome).inc();
  }

  appStreamWaited(result: string): void {
    this.metrics.appStreamWaits.labels(result).inc();
  }

  appStreamRefused(result: string): void {
    this.metrics.appStreamsRefused.labels(result).inc();
  }

  retryBudgetExhausted(upstream: string): void {
    this.metrics.retryBudgetExhausted.labels(upstream).inc();
  }

  outlierEjected(upstream: string): void {
    this.upstreams.outlierEjected(upstream);
  }

  ejectedEndpointsChanged(upstream: string, ejected: number): void {
    this.upstreams.ejectedChanged(upstream, ejected);
  }

  upstreamEndpointsChanged(upstream: string, endpoints: number): void {
    this.upstreams.endpointsChanged(upstream, endpoints);
  }

  upstreamLookupFailed(upstream: string, by = 1): void {
    this.upstreams.lookupFailed(upstream, by);
  }

  /** A reload removed the upstream: its address gauge goes (upstream-series.ts). */
  upstreamRemoved(upstream: string): void {
    this.upstreams.removedUpstream(upstream);
  }

  /** A removed upstream's last session and stream closed: its session and stream gauges go. */
  upstreamUnused(upstream: string): void {
    this.upstreams.unused(upstream);
  }

  circuitOpened(upstream: string): void {
    this.upstreams.circuitOpened(upstream);
  }

  private *allEndpoints(): Generator<EndpointEntry> {
    for (const direction of ['inbound', 'outbound'] as const) {
      for (const peer of this.peers[direction].values()) {
        for (const methods of peer.routes.values()) yield* methods.values();
      }
    }
  }

  /** Every endpoint with what it answered as OpenAPI response keys (by its `code` labels), for the discovery document. */
  discoveryRows(): DiscoveryRow[] {
    return [...this.allEndpoints()].filter((e) => e.count > 0).map((e) => ({ direction: e.direction, peer: e.peer, method: e.method, route: e.route, count: e.count, responses: [...e.byCode.keys()].map(responseKey).sort(), documented: e.documented }));
  }

  /** The API inventory for /endpoints, most used first. */
  endpoints(): EndpointView[] {
    // an overflow endpoint made for series alone (past the budget) has served no request of its own
    const rows = [...this.allEndpoints()].filter((e) => e.count > 0).map((e): EndpointView => {
      const schema = e.documented === undefined ? {} : { documented: e.documented, violations: e.violations };
      return { direction: e.direction, peer: e.peer, method: e.method, route: e.route, count: e.count, errors: e.errors, lastSeen: new Date(e.lastSeenMs).toISOString(), ...schema };
    });
    return rows.sort((a, b) => b.count - a.count);
  }
}
