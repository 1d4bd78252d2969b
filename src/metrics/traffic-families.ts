// The families `metrics.requests` switches: what TrafficMetrics (traffic-metrics.ts) counts
// into. A reload that turns it off empties them in each process (TrafficMetrics.clear); with
// workers > 1 the primary also drops what departed workers had counted in them
// (src/workers/departed-counts.ts), or a dead worker's last counts would stay on as live ones.

import type { Metrics } from './registry.js';

/** meshcar's own request families (cleared) and the prom-client ones with labelled series (reset). */
export function trafficFamilies(m: Metrics) {
  return {
    own: [m.requests, m.requestDuration, m.grpcResponses, m.upstreamActiveStreams],
    labelled: [m.requestErrors, m.schemaViolations, m.tlsHandshakeFailures, m.http2SessionsClosed, m.inboundConnectionsRefused, m.http2StreamErrors, m.upstreamSessions, m.retries, m.appStreamWaits, m.appStreamsRefused, m.retryBudgetExhausted, m.outlierEjections, m.ejectedEndpoints, m.upstreamEndpoints, m.upstreamLookupFailures, m.circuitOpen],
  };
}

/** Their names, as a metrics answer (a registry's JSON) names its families. */
export function trafficFamilyNames(m: Metrics): ReadonlySet<string> {
  const { own, labelled } = trafficFamilies(m);
  return new Set([...own.map((f) => f.name), ...labelled.map((f) => (f as unknown as { name: string }).name)]);
}
