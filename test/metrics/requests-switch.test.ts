// metrics.requests turned off by a reload empties the request families and /endpoints, as they
// are when it is off from the start; they used to keep their last values for good, read by a
// dashboard as live. Turned on again: open sessions are handed over exactly, counts start from
// zero; the gauges of what is open or out now (sessions, streams, ejected endpoints) are handed
// over as they stand. The real registry (GET /metrics's text), the observer the data plane is given.

import t from 'tap';
import { pino } from 'pino';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { LiveObservers } from '../../src/metrics/live-observers.js';
import { INBOUND_CONNECTION_REFUSALS, NO_OBSERVER, TLS_FAILURE_REASONS, type RequestRecord } from '../../src/metrics/traffic.js';

const request: RequestRecord = { direction: 'outbound', peer: 'payments', method: 'GET', path: '/charges', status: 503, durationSeconds: 0.002, errorCode: 'upstream_unavailable' };

const samples = (text: string, family: string) => text.split('\n').filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `));

t.test('off by reload: the families empty; on again: from zero, sessions handed over', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  const live = new LiveObservers({ tlsFailures: NO_OBSERVER, traffic, logger: pino({ level: 'silent' }) }, { requests: true, access: false });
  const observer = live.observer as typeof live.observer & { outlierEjected(u: string): void; ejectedEndpointsChanged(u: string, n: number): void };
  observer.requestFinished(request);
  observer.upstreamSessionsChanged('payments', 2);
  observer.outlierEjected('payments');
  observer.ejectedEndpointsChanged('payments', 1);
  observer.tlsHandshakeFailed('inbound', 'unknown_ca');
  const families = ['meshcar_requests_total', 'meshcar_request_duration_seconds_count', 'meshcar_request_errors_total', 'meshcar_upstream_sessions', 'meshcar_outlier_ejections_total', 'meshcar_upstream_ejected_endpoints', 'meshcar_tls_handshake_failures_total'];
  const on = await metrics.render();
  for (const family of families.slice(0, -1)) t.equal(samples(on, family).length, 1, `on: ${family} has its sample`);
  // every (direction, reason) from the start, at 0 but the one failure: a series born at 1 has no increase()
  const tls = samples(on, 'meshcar_tls_handshake_failures_total');
  t.equal(tls.length, 2 * TLS_FAILURE_REASONS.length, 'on: every direction and reason of the TLS failures');
  t.same(tls.filter((l) => !l.endsWith(' 0')), ['meshcar_tls_handshake_failures_total{direction="inbound",reason="unknown_ca"} 1'], 'all at 0 but the one counted');
  t.equal(traffic.endpoints().length, 1, 'and /endpoints its row');
  // so is every reason the inbound closes a connection for, before any refusal
  t.same(samples(on, 'meshcar_inbound_connections_refused_total'), INBOUND_CONNECTION_REFUSALS.map((reason) => `meshcar_inbound_connections_refused_total{reason="${reason}"} 0`), 'on: every inbound refusal reason at 0');

  live.switchTo({ requests: false, access: false });
  const off = await metrics.render();
  for (const family of families) t.same(samples(off, family), [], `off: no ${family} sample`);
  t.same(traffic.endpoints(), [], '/endpoints is empty');
  observer.requestFinished(request);
  t.same(samples(await metrics.render(), 'meshcar_requests_total'), [], 'nor does a request made while off count');

  live.switchTo({ requests: true, access: false });
  const again = await metrics.render();
  t.same(samples(again, 'meshcar_upstream_sessions'), ['meshcar_upstream_sessions{upstream="payments"} 2'], 'on again: the sessions still open, exactly');
  // an endpoint ejected before the switch is still out: the gauge says so at once, not from its next change
  t.same(samples(again, 'meshcar_upstream_ejected_endpoints'), ['meshcar_upstream_ejected_endpoints{upstream="payments"} 1'], 'and the endpoints still ejected');
  t.same(samples(again, 'meshcar_requests_total'), [], 'no request counted yet');
  const tlsAgain = samples(again, 'meshcar_tls_handshake_failures_total');
  t.ok(tlsAgain.length === 2 * TLS_FAILURE_REASONS.length && tlsAgain.every((l) => l.endsWith(' 0')), 'the TLS failures back at 0, every direction and reason');
  t.equal(samples(again, 'meshcar_inbound_connections_refused_total').filter((l) => l.endsWith(' 0')).length, INBOUND_CONNECTION_REFUSALS.length, 'and the inbound refusal reasons');
  observer.requestFinished(request);
  t.match(samples(await metrics.render(), 'meshcar_requests_total'), [/ 1$/], 'then each counts from zero');
});
