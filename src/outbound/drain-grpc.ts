// A drain that runs out of time with gRPC calls from the app still open ends each of them with
// a gRPC status before the connections go: UNAVAILABLE and x-meshcar-error
// upstream_unavailable, in trailers after what was relayed (trailers-only when no answer had
// begun), as the outbound ends any gRPC answer it cuts (forward-h2c.ts cutAnswer). A bare
// reset of the session would read as INTERNAL (RST_STREAM INTERNAL_ERROR), a status gRPC
// clients do not retry and the access log and metrics could not record (no grpc-status: none);
// UNAVAILABLE tells the client to go again, to a sidecar that is not shutting down. The call is
// cancelled on to the upstream as when the app leaves (Attempt.fail).

import type { ServerHttp2Stream } from 'node:http2';
import { MeshcarError } from '../errors.js';
import { GRPC_CUT_REASON } from '../http/grpc-drain-cut.js';
import { grpcAnswerType } from '../http/status.js';
import { attemptOf } from './attempt-events.js';

// the grace: the drain has run out by then (sidecar-drain.ts gives the outbound what is left of
// the drainTimeout, often nothing), so it is time past it, only when a call was cut
export { GRPC_CUT_GRACE_MS } from '../http/grpc-drain-cut.js';

/** Ends every gRPC call among `streams` with UNAVAILABLE; returns how many it ended. */
export function endGrpcCalls(streams: readonly ServerHttp2Stream[]): number {
  let ended = 0;
  for (const stream of streams) {
    // undefined: a stream not yet handed to an attempt (its body read for the OpenAPI check)
    const attempt = attemptOf(stream);
    if (attempt === undefined || attempt.failed || stream.closed) continue;
    if (grpcAnswerType(attempt.reqHeaders['content-type']) !== 'application/grpc') continue;
    attempt.fail(new MeshcarError('upstream_unavailable', GRPC_CUT_REASON));
    ended++;
  }
  return ended;
}
