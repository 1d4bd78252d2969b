// A drain that runs out of time with gRPC calls still open ends each of them with a gRPC status
// before the connections go: UNAVAILABLE and x-meshcar-error upstream_unavailable, in trailers
// after what the app sent (trailers-only when it had not answered), and cancels the call
// toward the app. Destroying the session alone reset the streams: the caller read the drain as
// a reset (a calling meshcar as upstream_reset, a direct gRPC client as INTERNAL or CANCELLED)
// and this sidecar recorded a caller that left (499, reason reset, grpc_code none), which it
// was not. The calling side's outbound relays the status as the app's own (forward-h2c.ts).

import { MeshcarError } from '../errors.js';
import { GRPC_CUT_REASON as REASON } from '../http/grpc-drain-cut.js';
import { grpcErrorTrailers } from '../http/status.js';
import { DONE, WAITING, type Exchange } from './exchange.js';
import { cancelAppRequest } from './exchange-links.js';

export { GRPC_CUT_GRACE_MS } from '../http/grpc-drain-cut.js';

export function endGrpcCallForDrain(exchange: Exchange): void {
  if (exchange.phase === DONE || exchange.callerGone) return;
  if (exchange.phase === WAITING) {
    // our trailers-only answer; the app's request is cancelled with it
    exchange.fail('upstream_unavailable', REASON);
    return;
  }
  // the app's answer is under way: it ends here with our status (finish() takes it as the
  // app's trailers would be, and the app's own end, coming later, finds the exchange over)
  exchange.errorCode = 'upstream_unavailable';
  cancelAppRequest(exchange.upstream);
  exchange.finish(grpcErrorTrailers(new MeshcarError('upstream_unavailable', REASON)), true);
}
