// What an inbound exchange (exchange.ts) is linked to, and how those links are found: the
// context it shares with its listener, the request toward the app (and how that is stopped:
// HTTP/1.1 drops the connection, HTTP/2 resets the stream with CANCEL), the sink its answer is
// written to, and the symbol by which the shared listeners on its emitters (caller's response
// or stream, the app's request) find it, so a request costs no closures. Separate from
// exchange.ts, which is the exchange's state machine and report: these are the handles the
// forwarders, the deadlines and the relay use to reach it.

import type { Logger } from 'pino';
import type { LogPerKey } from '../log-per-key.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { ConnectionTracker } from './connections.js';
import type { Exchange } from './exchange.js';

/** What every exchange needs from its listener: one object per Inbound, shared. */
export interface ExchangeContext {
  readonly tracker: ConnectionTracker;
  readonly observer: TrafficObserver;
  /** For what must not end the process yet must be seen (an error answer that failed for a reason of ours). */
  readonly logger: Logger;
  /** Warn lines about answers the idle timeout cut after their head, one per config key per window (stream-cut-log.ts). */
  readonly streamCuts: LogPerKey;
}

/** The request toward the app (http.ClientRequest or ClientHttp2Stream). */
export interface UpstreamRequest {
  destroy(error?: Error): unknown;
  readonly writableFinished: boolean;
  /** HTTP/2 streams: reset with a code (a plain destroy() would send NO_ERROR, not CANCEL). */
  close?(code?: number): void;
  /** Bytes of the request's body written toward the app that the app has not taken yet (a stream's, a ClientRequest's, the own client's connection's). */
  readonly writableLength?: number;
}

const NGHTTP2_CANCEL = 8;

/** Stops the request to the app: HTTP/1.1 drops the connection, HTTP/2 resets the stream. */
export function cancelAppRequest(upstream: UpstreamRequest | undefined): void {
  if (upstream === undefined) return;
  if (typeof upstream.close === 'function') upstream.close(NGHTTP2_CANCEL);
  else upstream.destroy();
}

/** Where the app's response body is written: a ServerResponse or a ServerHttp2Stream. */
export type ResponseSink = NodeJS.WritableStream;

/**
 * The exchange an emitter (response, stream, upstream request) belongs to. Listeners are
 * shared module-level functions that find their exchange here, so a request costs no closures.
 */
export const kExchange = Symbol('meshcar.inbound.exchange');

export interface HasExchange<E extends Exchange = Exchange> {
  [kExchange]: E;
}

export function exchangeOf<E extends Exchange = Exchange>(emitter: unknown): E {
  return (emitter as HasExchange<E>)[kExchange];
}

export function bindExchange(emitter: object, exchange: Exchange): void {
  (emitter as HasExchange)[kExchange] = exchange;
}
