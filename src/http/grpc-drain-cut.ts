// What both sides say and allow when a drain runs out of time with gRPC calls still open
// (src/inbound/drain-grpc.ts, src/outbound/drain-grpc.ts): one message, one grace period.

/** How long the cut calls' statuses get to go out, past the drainTimeout, when a call was cut. */
export const GRPC_CUT_GRACE_MS = 250;

/** The grpc-message of a call the drain cut (x-meshcar-error upstream_unavailable). */
export const GRPC_CUT_REASON = 'the sidecar is shutting down and its drain ran out of time (drainTimeout) with this call in flight';
