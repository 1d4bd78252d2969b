// The single report of an inbound exchange (exchange.ts), made once when the caller's side has
// closed: the record the metrics and the access log get of it (src/metrics/traffic.ts), with
// the status the caller got, 499 when it left before an answer, or 503 when the sidecar cut it
// at the drain timeout. Separate from exchange.ts, which decides the exchange's course: this
// only says, once, how it went.

import { performance } from 'node:perf_hooks';
import { CLIENT_CLOSED_STATUS } from '../http/status.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { Exchange } from './exchange.js';

const SERVICE_UNAVAILABLE = 503;

/**
 * `cutBy`: set once the sidecar has cut every connection still open (at the drain timeout, or a
 * close): an exchange that broke off then was cut by us, not left by its caller, so it is
 * recorded as a 503 with that reason (with its status, if its answer had begun).
 */
export function reportFinished(exchange: Exchange, observer: TrafficObserver, cutBy: string | undefined): void {
  const cut = cutBy !== undefined && (exchange.status === 0 || exchange.errorCode === 'reset');
  observer.requestFinished({
    direction: 'inbound',
    peer: exchange.caller.peer,
    method: exchange.method,
    path: exchange.path,
    // no status: the caller left before an answer (the outbound records the same as 499)
    status: exchange.status !== 0 ? exchange.status : cut ? SERVICE_UNAVAILABLE : CLIENT_CLOSED_STATUS,
    durationSeconds: (performance.now() - exchange.startedAt) / 1000,
    errorCode: cut ? cutBy : exchange.errorCode,
    requestId: exchange.requestId,
    bytesIn: exchange.bytesIn,
    bytesOut: exchange.bytesOut,
    schema: exchange.schema,
    grpcStatus: exchange.grpcStatus,
  });
}
