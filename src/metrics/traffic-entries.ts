// What TrafficMetrics (traffic-metrics.ts) keeps per peer and per endpoint (route and method),
// and the row of /endpoints it answers with; its options (route templates, caps).

import type { Counter } from 'prom-client';
import type { RequestCounterChild, RequestHistogramChild } from './request-families.js';
import type { RouteLabeler } from './route-templates.js';
import type { GrpcChildren } from './grpc-codes.js';
import type { Direction } from './traffic.js';

export interface StatusChildren {
  readonly count: RequestCounterChild;
  readonly duration: RequestHistogramChild;
}

/** One API endpoint: direction, peer, method and route. Also a row of /endpoints. */
export interface EndpointEntry {
  readonly direction: Direction;
  readonly peer: string;
  readonly method: string;
  readonly route: string;
  count: number;
  errors: number;
  /** Requests that broke the OpenAPI spec. */
  violations: number;
  /** undefined: no spec held against this traffic; else whether the route is an operation of the spec. */
  documented: boolean | undefined;
  lastSeenMs: number;
  /** By a registered status as answered (the lookup of most requests); any other status is found by its class in byCode. */
  readonly byStatus: Map<number, StatusChildren>;
  /** By `code` label: what the endpoint answered, for the discovery document too. */
  readonly byCode: Map<string, StatusChildren>;
  readonly errorsByReason: Map<string, Counter.Internal>;
  readonly violationsByKind: Map<string, Counter.Internal>;
  /** meshcar_grpc_responses_total's children by grpc_code slot; undefined until a gRPC request comes. */
  grpc: GrpcChildren | undefined;
}

export interface PeerEntry {
  /** The peer label: the peer's name, or __other__ beyond the peer cap. */
  readonly name: string;
  labeler: RouteLabeler;
  /** route → method → endpoint */
  readonly routes: Map<string, Map<string, EndpointEntry>>;
  /** Endpoints made for this peer (at most the endpoint cap, plus one per method under __other__). */
  endpoints: number;
}

export interface EndpointView {
  readonly direction: Direction;
  readonly peer: string;
  readonly method: string;
  readonly route: string;
  readonly count: number;
  readonly errors: number;
  readonly lastSeen: string;
  /** Present when an OpenAPI spec is configured for this traffic. */
  readonly documented?: boolean;
  readonly violations?: number;
}

export interface TrafficMetricsOptions {
  /** Configured route templates per outbound upstream name. */
  readonly routesByUpstream?: ReadonlyMap<string, readonly string[]>;
  readonly routeCap?: number;
  /** Distinct peers per direction before they share one __other__ peer label. */
  readonly peerCap?: number;
  /** Endpoints (route and method) per direction and peer before new ones are counted under route __other__. */
  readonly endpointCap?: number;
  /** Lines the request families may print for all peers together (DEFAULT_SERIES_BUDGET); tests set a small one. */
  readonly seriesBudget?: number;
  /** About how many bytes of text they may print (DEFAULT_SERIES_BYTE_BUDGET). */
  readonly seriesByteBudget?: number;
}
