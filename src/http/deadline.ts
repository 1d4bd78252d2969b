// The deadline a caller puts on its own request: `grpc-timeout` (gRPC's units H M S m u n) or
// `x-request-timeout` (a duration such as `250ms`, `2s`, or plain seconds). Shared by the
// outbound retry policy and the inbound route timeouts.

import { parseDuration } from '../config/duration.js';

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * The deadline the app gave this request, in ms: `grpc-timeout` or `x-request-timeout`. The
 * shorter wins; undefined when there is none (or it cannot be read: then the configured
 * timeout applies).
 */
export function appDeadlineMs(grpcTimeout: unknown, requestTimeout: unknown): number | undefined {
  const grpc = grpcTimeoutMs(grpcTimeout);
  const own = requestTimeoutMs(requestTimeout);
  if (own !== undefined && (grpc === undefined || own < grpc)) return own;
  return grpc;
}

/** A `grpc-timeout` value in ms, or undefined when it cannot be read (then it goes on as sent). */
export function grpcTimeoutMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = GRPC_TIMEOUT.exec(value);
  // gRPC's wire format takes positive values only: a 0 is read as none (it was a 1 ms timer
  // racing the upstream's answer); the header goes on as sent, for the app to judge
  const count = m ? Number(m[1]) : 0;
  return count > 0 ? Math.max(1, Math.ceil(count * (GRPC_UNIT_MS[(m as RegExpExecArray)[2] as string] as number))) : undefined;
}

/** An `x-request-timeout` value in ms, or undefined when it cannot be read (then it goes on as sent). */
export function requestTimeoutMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const parsed = SECONDS.test(text) ? Number(text) * 1000 : parseDuration(text);
  return parsed !== undefined && parsed > 0 ? Math.max(1, Math.ceil(parsed)) : undefined;
}
