// What every forwarder shares: the context they run in (routing table, observer, activity,
// drain flag) and the one record per request that ends up in observer.requestFinished.

import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { SchemaResult, TrafficObserver } from '../metrics/traffic.js';
import { CLIENT_CLOSED_STATUS, isErrorCode } from '../http/status.js';
import { grpcStatusIn } from '../http/grpc-status.js';
import type { Activity } from './activity.js';
import type { UpstreamRouter } from './router.js';
import type { UpstreamPool } from './upstream-pool.js';
import { UNKNOWN_PEER } from '../metrics/unknown-peer.js';

export interface OutboundContext {
  readonly router: UpstreamRouter<UpstreamPool>;
  readonly observer: TrafficObserver;
  readonly logger: Logger;
  readonly activity: Activity;
  /** Set once drain() starts: HTTP/1.1 answers carry `Connection: close`. */
  readonly draining: boolean;
  /**
   * Why the sidecar cut every connection still open, once it has (the drain timeout, or a
   * close): a request that broke off then is recorded as cut (503), not as the app leaving (499).
   */
  readonly cutBy: 'drain_timeout' | 'shutdown' | undefined;
}

const SERVICE_UNAVAILABLE = 503;

const kCounted = Symbol('meshcar.countedExchange');
type Counted = Readable & { [kCounted]?: { exchange: Exchange; inbound: boolean } };

// one shared listener for every body (a closure per request would be garbage on the hot path)
function onCountedData(this: Counted, chunk: Buffer): void {
  const counted = this[kCounted];
  if (counted?.inbound) counted.exchange.bytesIn += chunk.length;
  else if (counted) counted.exchange.bytesOut += chunk.length;
}

/** Counts the body bytes that flow through `body` (already piped: a second 'data' listener changes no flow). */
export function countBody(body: Readable, exchange: Exchange, direction: 'in' | 'out'): void {
  (body as Counted)[kCounted] = { exchange, inbound: direction === 'in' };
  body.on('data', onCountedData);
}

/** One request as the outbound side saw it; reported exactly once. */
export class Exchange {
  peer = UNKNOWN_PEER;
  path = '/';
  status = 0;
  errorCode: string | undefined = undefined;
  /** The answer's head went to the app and its end did not: the app's side closed first (attempt.appClosed). */
  brokenOff = false;
  /** Body bytes: from the app (request) and to it (response), for the access log. */
  bytesIn = 0;
  bytesOut = 0;
  endpoint: string | undefined = undefined;
  /** What the upstream's OpenAPI check found (src/outbound/schema-check.ts); undefined: none. */
  schema: SchemaResult | undefined = undefined;
  /** gRPC requests: the grpc-status sent to the app (null: none yet); undefined otherwise (src/http/grpc-status.ts). */
  grpcStatus: number | null | undefined = undefined;
  /** Retries made (attempt-retry.ts): the access log says them, as Envoy's attempt count. */
  retries = 0;
  private reported = false;

  constructor(
    private readonly ctx: Pick<OutboundContext, 'observer' | 'cutBy'>,
    readonly method: string,
    readonly requestId: string,
    /** When the request arrived: a refusal made after its body was read (schema-check.ts) counts from then. */
    readonly startedMs = performance.now(),
  ) {}

  /**
   * The upstream's answer began. When the remote sidecar answered itself (403 forbidden, 429,
   * ...), its x-meshcar-error code is this request's error too, so a refusal counts alike on
   * both sides; only known codes are taken, so a peer cannot grow the error labels.
   */
  answered(status: number, head: Readonly<Record<string, unknown>>, ended = false): void {
    this.status = status;
    const code = head['x-meshcar-error'];
    if (isErrorCode(code)) this.errorCode ??= code;
    // trailers-only (a NOT_FOUND before any message, a remote sidecar's own status): in a head
    // that ends the answer; one in a head with more to come is not the call's status, which the
    // trailers carry (an app sending grpc-status 0 first and 13 in its trailers was counted OK)
    if (this.grpcStatus === null && ended) this.grpcStatus = grpcStatusIn(head);
  }

  /** The upstream's trailers, passed on to the app: where a gRPC answer with a body has its status. */
  trailers(trailers: Readonly<Record<string, unknown>>): void {
    if (this.grpcStatus === null) this.grpcStatus = grpcStatusIn(trailers);
  }

  finish(): void {
    if (this.reported) return;
    this.reported = true;
    const cutBy = this.ctx.cutBy;
    // an answer the sidecar broke off (its head out, its end not) is cut as one never begun is:
    // recorded with the head's status and the cut's reason (it read as a plain success)
    const cut = cutBy !== undefined && (this.status === 0 || this.errorCode === 'reset' || this.brokenOff);
    this.ctx.observer.requestFinished({
      direction: 'outbound',
      peer: this.peer,
      method: this.method,
      path: this.path,
      status: this.status !== 0 ? this.status : cut ? SERVICE_UNAVAILABLE : CLIENT_CLOSED_STATUS,
      durationSeconds: (performance.now() - this.startedMs) / 1000,
      errorCode: cut ? cutBy : this.errorCode,
      requestId: this.requestId,
      endpoint: this.endpoint,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      schema: this.schema,
      grpcStatus: this.grpcStatus,
      retries: this.retries > 0 ? this.retries : undefined,
    });
  }
}
