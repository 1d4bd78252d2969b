// The grpc_code label of meshcar_grpc_responses_total: the 17 canonical gRPC status names
// (grpc/doc/statuscodes.md), UNKNOWN for any other number (as gRPC clients read one), and
// `none` for a gRPC answer that carried no grpc-status at all (cut or reset). 18 values at
// most, so the family has at most 18 series per direction, peer and route: as bounded as
// meshcar_requests_total, whose peer and route it shares (traffic-metrics.ts).

import type { RequestCounter, RequestCounterChild } from './request-families.js';
import type { Direction } from './traffic.js';

export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export const GRPC_CODE_NONE = 'none';
/** The slot of `none` in an endpoint's children (after the 17 codes). */
const NONE_SLOT = GRPC_CODE_NAMES.length;
const UNKNOWN_SLOT = 2;

/** The slot of a status (a number, or null: none) among the 18 label values: where an endpoint's cache holds its child. */
export function grpcSlot(status: number | null): number {
  if (status === null) return NONE_SLOT;
  return status >= 0 && status < NONE_SLOT ? status : UNKNOWN_SLOT;
}

/** The grpc_code label of a status (a number, or null: the answer carried none). */
export function grpcCodeLabel(status: number | null): string {
  const slot = grpcSlot(status);
  return slot === NONE_SLOT ? GRPC_CODE_NONE : (GRPC_CODE_NAMES[slot] as string);
}

/** An endpoint's children of the family, by slot, made on first use (most endpoints are not gRPC). */
export type GrpcChildren = (RequestCounterChild | undefined)[];

/** Where a new child takes its labels from: the endpoint, or the one its series overflow to. */
export interface GrpcLabels {
  readonly direction: Direction;
  readonly peer: string;
  readonly route: string;
}

/**
 * Counts one gRPC answer on the endpoint's cached child: an array index after the first
 * answer with that code, no label join; `cache` is the endpoint's own, and a child it lacks
 * is made with the labels of `labels` (the endpoint, or its overflow past the series budget).
 */
export function countGrpc(family: RequestCounter<string>, cache: GrpcChildren, labels: GrpcLabels, status: number | null): void {
  const slot = grpcSlot(status);
  let child = cache[slot];
  if (child === undefined) {
    child = family.labels(labels.direction, labels.peer, labels.route, grpcCodeLabel(status));
    cache[slot] = child;
  }
  child.inc();
}
