// The single report of an inbound exchange (exchange.ts), made once when the caller's side has
// closed: the record the metrics and the access log get of it (src/metrics/traffic.ts), with
// the status the caller got, or 499 when it left before an answer. Separate from exchange.ts,
// which decides the exchange's course: this only says, once, how it went.

import { performance } from 'node:perf_hooks';
import { CLIENT_CLOSED_STATUS } from '../http/status.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { Exchange } from './exchange.js';

export function reportFinished(exchange: Exchange, observer: TrafficObserver): void {
  observer.requestFinished({
    direction: 'inbound',
    peer: exchange.caller.peer,
    method: exchange.method,
    path: exchange.path,
    // no status: the caller left before an answer (the outbound records the same as 499)
    status: exchange.status === 0 ? CLIENT_CLOSED_STATUS : exchange.status,
    durationSeconds: (performance.now() - exchange.startedAt) / 1000,
    errorCode: exchange.errorCode,
    requestId: exchange.requestId,
    bytesIn: exchange.bytesIn,
    bytesOut: exchange.bytesOut,
    schema: exchange.schema,
    grpcStatus: exchange.grpcStatus,
  });
}
