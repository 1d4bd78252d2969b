// The gRPC status of an exchange as the data plane sees it go by, for the gRPC metrics and
// the access log (src/metrics/grpc-codes.ts turns it into a label): whether a request is gRPC
// at all, and the grpc-status a head (trailers-only) or trailers carry, as a number.
//
// An exchange keeps it in one field, `grpcStatus`: undefined, not a gRPC request (nothing else
// is ever done for it); null, a gRPC request whose answer carried no grpc-status (yet, or at
// all: cut, reset, the caller left); a number, the status the caller was given.

import { grpcAnswerType } from './status.js';

/** What gRPC clients make of a grpc-status that is not a number: UNKNOWN. */
export const GRPC_UNKNOWN = 2;

/**
 * A gRPC request: `application/grpc`, `application/grpc+proto` etc. gRPC-Web is not (its status
 * rides in the body, which the sidecar does not read). Most requests are ruled out by one
 * character ('application/' is 12 long: index 12 is grpc's 'g', json's 'j'), without lower-casing.
 */
export function isGrpcRequest(contentType: unknown): boolean {
  return typeof contentType === 'string' && (contentType.charCodeAt(12) | 0x20) === 0x67 && grpcAnswerType(contentType) === 'application/grpc';
}

/** The exchange's starting `grpcStatus`: null for a gRPC request (no status seen yet), else undefined. */
export function grpcStatusStart(contentType: unknown): null | undefined {
  return isGrpcRequest(contentType) ? null : undefined;
}

/**
 * A grpc-status field's value as a number. gRPC clients read a value that is not a decimal
 * number as UNKNOWN; numbers outside 0–16 are kept as they came (the access log shows them;
 * the metric label counts them as UNKNOWN, as gRPC itself does).
 */
export function grpcStatusValue(value: unknown): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : GRPC_UNKNOWN;
  if (typeof text !== 'string' || text.length === 0 || text.length > 10) return GRPC_UNKNOWN;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return GRPC_UNKNOWN;
  }
  return Number(text);
}

/**
 * The grpc-status in a head or trailers (an object, or a flat list of lower-case names and
 * values as our writers take it), or null when there is none.
 */
export function grpcStatusIn(fields: Readonly<Record<string, unknown>> | readonly string[] | undefined): number | null {
  if (fields === undefined) return null;
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'grpc-status') return grpcStatusValue(fields[i + 1]);
    return null;
  }
  const value = (fields as Readonly<Record<string, unknown>>)['grpc-status'];
  return value === undefined ? null : grpcStatusValue(value);
}
