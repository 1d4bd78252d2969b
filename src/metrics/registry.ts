// Every metric family meshcar exports, declared once with its labels. Components receive the
// Metrics object they need (never a global registry), so tests and several sidecars in one
// process stay independent. A scrape's text format (Prometheus or OpenMetrics) is chosen in
// openmetrics.ts.

import { Counter, Gauge, collectProcessMetrics } from './prom-parts.js';
import type client from 'prom-client';
import { VERSION } from '../version.js';
import { logLinesDropped } from '../log-output.js';
import { RequestCounter, RequestGauge, RequestHistogram } from './request-families.js';
import { negotiateMetrics } from './openmetrics.js';
import { MetricsRegistry } from './metrics-registry.js';

/** 0.5 ms to 10 s: sidecar overhead lives in the first buckets, app latency in the rest. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const PROMTOOL_REJECTED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
/**
 * prom-client's event-loop delay summary comes from a sampler that wakes the process every
 * `eventLoopMonitoringPrecision` ms (10 by default: 100 wake-ups a second on an idle sidecar).
 * The sampler is slowed to once a minute and its series are dropped; `nodejs_eventloop_lag_seconds`
 * stays: it is measured at each scrape (one setImmediate), so it costs nothing between scrapes.
 */
const SAMPLED_LAG = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `nodejs_eventloop_lag_${s}_seconds`);
const LAG_SAMPLER_MS = 60_000;

export class Metrics {
  readonly registry: client.Registry = new MetricsRegistry();

  // the two families every request touches: see request-families.ts
  readonly requests = new RequestCounter({
    name: 'meshcar_requests_total',
    help: 'Requests handled, by direction, peer, method, route template and status code.',
    labelNames: ['direction', 'peer', 'method', 'route', 'code'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new RequestHistogram({
    name: 'meshcar_request_duration_seconds',
    help: 'Time from request received to response finished, as seen by the sidecar.',
    labelNames: ['direction', 'peer', 'method', 'route', 'status_class'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  // gRPC statuses, which meshcar_requests_total cannot show (a gRPC NOT_FOUND is HTTP 200 there,
  // and its labels are a fixed contract): a family of its own, bounded like it (same peer and
  // route values, 18 grpc_code values), touched only by gRPC requests (src/metrics/grpc-codes.ts)
  readonly grpcResponses = new RequestCounter({
    name: 'meshcar_grpc_responses_total',
    help: 'gRPC requests answered, by direction, peer, route template and the grpc-status the caller was given (none: the answer carried no grpc-status, cut or reset).',
    labelNames: ['direction', 'peer', 'route', 'grpc_code'] as const,
    registers: [this.registry],
  });

  readonly requestErrors = new Counter({
    name: 'meshcar_request_errors_total',
    help: 'Requests that failed or were refused by the sidecar, by reason.',
    labelNames: ['direction', 'peer', 'route', 'reason'] as const,
    registers: [this.registry],
  });

  readonly tlsHandshakeFailures = new Counter({
    name: 'meshcar_tls_handshake_failures_total',
    help: 'TLS handshakes refused or failed, by reason.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly upstreamSessions = new Gauge({
    name: 'meshcar_upstream_sessions',
    help: 'Open HTTP/2 sessions to an upstream.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly upstreamActiveStreams = new RequestGauge({
    name: 'meshcar_upstream_active_streams',
    help: 'Requests in flight on HTTP/2 sessions to an upstream.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly caCertificatesIssued = new Counter({
    name: 'meshcar_ca_certificates_issued_total',
    help: 'Certificates issued by the CA.',
    registers: [this.registry],
  });

  readonly caRequestsDenied = new Counter({
    name: 'meshcar_ca_requests_denied_total',
    help: 'CA requests refused, by error code.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly caConnectionsRefused = new Counter({
    name: 'meshcar_ca_connections_refused_total',
    help: 'Connections to the CA closed at its connection caps, by reason (max_connections: the CA\'s cap on open connections, each with a request in flight: the new one closed, or one of the address holding the most, request and all, for a newcomer from an address holding fewer; idle_evicted: a connection with no request in flight, closed at that cap for a new one; per_address_limit: the client address\'s, the new one closed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly caIssuerExpiry = new Gauge({
    name: 'meshcar_ca_issuer_expiry_timestamp_seconds',
    help: 'When the CA\'s signing issuer certificate expires (Unix time).',
    registers: [this.registry],
  });

  readonly caRootExpiry = new Gauge({
    name: 'meshcar_ca_root_expiry_timestamp_seconds',
    help: 'When each of the CA\'s root certificates expires (Unix time), by role in a root rotation (active, pending, retiring).',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });

  /**
   * The identity families have been set (watchIdentityMetrics). Until then meshcar_identity_bundle_roots
   * reads prom-client's 0, which a worker still building its identity must not hand over: with
   * workers > 1 the family is the minimum over the workers, and /metrics said 0 roots while a
   * replacement worker waited for its config (seconds, during a reload round).
   */
  identityShown = false;

  readonly identityBundleRoots = new Gauge({
    name: 'meshcar_identity_bundle_roots',
    help: 'Root certificates the sidecar trusts now (2 during a CA root rotation).',
    aggregator: 'min',
    registers: [this.registry],
  });

  readonly identityCertExpiry = new Gauge({
    name: 'meshcar_identity_cert_expiry_timestamp_seconds',
    help: 'When the current workload certificate expires (Unix time).',
    labelNames: ['spiffe_id'] as const,
    // workers > 1: the oldest certificate any worker still serves, the one an expiry alert is about
    aggregator: 'min',
    registers: [this.registry],
  });

  readonly identityRenewals = new Counter({
    name: 'meshcar_identity_renewals_total',
    help: 'Certificate renewal attempts by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly identityPersistFailures = new Counter({
    name: 'meshcar_identity_persist_failures_total',
    help: 'Failed saves of the SVID to identity.dir (a full or read-only disk), retries included; until one succeeds a restart may need a new join token.',
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'meshcar_config_reloads_total',
    help: 'Config reloads (SIGHUP or POST /reload) by result: success, or failure (the running config was kept).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'meshcar_retries_total',
    help: 'Outbound retries by upstream, reason (connect_failure, reset, status_503, status_429) and outcome (success, failure, cancelled: the app left first).',
    labelNames: ['upstream', 'reason', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly appStreamWaits = new Counter({
    name: 'meshcar_app_stream_waits_total',
    help: 'Inbound requests to an h2c app that waited for a stream slot (every session at the app\'s stream limit), by result (granted, gave_up: deadline or caller gone, queue_full, failed: app unreachable).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly appStreamsRefused = new Counter({
    name: 'meshcar_app_streams_refused_total',
    help: 'Inbound streams an h2c app refused (REFUSED_STREAM: not processed), by result (replayed, answered: 503).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly retryBudgetExhausted = new Counter({
    name: 'meshcar_retry_budget_exhausted_total',
    help: 'Outbound retries not made because the upstream\'s retry budget was spent.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly outlierEjections = new Counter({
    name: 'meshcar_outlier_ejections_total',
    help: 'Outbound endpoints ejected after consecutive failures (connect failure, reset, timeout, any 5xx answer; a gRPC answer by its grpc-status), by upstream.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly ejectedEndpoints = new Gauge({
    name: 'meshcar_upstream_ejected_endpoints',
    help: 'Outbound endpoints currently ejected, by upstream.',
    labelNames: ['upstream'] as const,
    // each worker ejects on its own: the most any worker has out, not a sum past the endpoint count
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly upstreamEndpoints = new Gauge({
    name: 'meshcar_upstream_endpoints',
    help: 'Outbound addresses known now, by upstream: IP endpoints as written and the addresses its host names last resolved to (0: requests get 503 upstream_unavailable).',
    labelNames: ['upstream'] as const,
    // each worker resolves on its own: the most any worker knows, not a sum past the records
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly upstreamLookupFailures = new Counter({
    name: 'meshcar_upstream_lookup_failures_total',
    help: "Failed lookups of an outbound upstream's host names (an error, no address, or none of a family this host can reach), by upstream; its last addresses stay in use.",
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly circuitOpen = new Counter({
    name: 'meshcar_circuit_open_total',
    help: 'Outbound requests refused with 503 circuit_open (circuitBreaker maxRequests or maxPending reached), by upstream.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly http2SessionsClosed = new Counter({
    name: 'meshcar_http2_sessions_closed_total',
    help: 'HTTP/2 sessions the sidecar closed for the peer\'s abuse or protocol violation, by direction and reason (rapid_reset, made_you_reset, *_flood, protocol_error, ...); with http2.codec node, the inbound\'s closes by Node\'s codec (floods, protocol errors) and its rapid-reset guard, none on the outbound.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly inboundConnectionsRefused = new Counter({
    name: 'meshcar_inbound_connections_refused_total',
    help: 'Connections to the inbound closed over a cap, by reason (handshake_limit: TLS handshakes in progress from the address; handshake_total_limit: the oldest TLS handshake in progress, closed when the listener had its maximum; caller_limit: the caller identity\'s open connections; chain_refused: from an address (or IPv6 /64) whose failed TLS handshakes spent their budget, their certificate chains being costly to check, refused for 1 s to 60 s; pipelined: HTTP/1.1 requests pipelined on the connection without reading the answers).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly http2StreamErrors = new Counter({
    name: 'meshcar_http2_stream_errors_total',
    help: 'HTTP/2 streams the sidecar reset (RST_STREAM) because the peer broke a stream rule, with http2.codec meshcar, by direction and reason (malformed_headers, content_length_mismatch, refused_stream, ...).',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly schemaViolations = new Counter({
    name: 'meshcar_schema_violations_total',
    help: 'Requests that broke the OpenAPI spec (counted in shadow and enforce mode), by direction, peer, route and kind (undocumented_operation, path, query, header, content_type, body).',
    labelNames: ['direction', 'peer', 'route', 'kind'] as const,
    registers: [this.registry],
  });

  readonly logLinesDropped = new Counter({
    name: 'meshcar_log_lines_dropped_total',
    help: 'Log lines dropped because stdout did not take them in time (4 MiB buffered at most: a slow or unread stdout).',
    registers: [this.registry],
    // the process has one stdout: the count is the process's (src/log-output.ts), read at each scrape
    collect() {
      this.reset();
      this.inc(logLinesDropped());
    },
  });

  readonly buildInfo = new Gauge({
    name: 'meshcar_build_info',
    help: 'meshcar build information; always 1.',
    labelNames: ['version'] as const,
    aggregator: 'first',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    this.buildInfo.labels(VERSION).set(1);
    if (options.processMetrics ?? true) {
      // prom-client's default metrics, without loading @opentelemetry/api (prom-parts.ts)
      collectProcessMetrics(this.registry, LAG_SAMPLER_MS);
      // these three gauges end in _total, which the naming rules keep for counters, and
      // promtool rejects them; the same facts by type stay in nodejs_active_handles{type} etc.
      for (const name of [...PROMTOOL_REJECTED, ...SAMPLED_LAG]) this.registry.removeSingleMetric(name);
    }
  }

  contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** OpenMetrics text when the scraper asks for it (Accept: application/openmetrics-text). */
  async renderFor(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    return negotiateMetrics(await this.registry.metrics(), accept);
  }
}
