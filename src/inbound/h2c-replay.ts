// What lets a request to the h2c app wait for a stream slot and be sent again after a refusal
// (app-h2c.ts): the handle a waiting request holds in the pool's queue (the exchange's end, a
// timeout or the caller gone, takes it out), and the request body as it went by, kept up to
// BODY_KEEP_LIMIT bytes so that a stream the app refused (REFUSED_STREAM: it did not process it,
// RFC 9113 §8.7) can be replayed with its body, as the outbound's retries keep theirs; and
// which streams the app never processed (neverProcessed).

import http2, { type ClientHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Exchange } from './exchange.js';
import { exchangeOf, type UpstreamRequest } from './exchange-links.js';
import type { PoolWaiter } from './h2c-pool.js';
import type { Lease } from './h2c-lease.js';
import { ReplayCopy } from '../http/replay-copy.js';

/** Request body bytes kept for a replay (as the outbound's retry.bufferLimit); past it a refused request is answered 503. */
export const BODY_KEEP_LIMIT = 64 * 1024;

/** How many times a request is sent at most when the app keeps refusing its stream. */
export const MAX_SENDS = 4;

const kKept = Symbol('meshcar.inbound.keptBody');

interface KeptBody {
  /** Copied into one buffer as it goes by (replay-copy.ts); null: past the limit, or answered. */
  copy: ReplayCopy | null;
}

interface WithKept {
  [kKept]?: KeptBody;
}

/** Starts keeping the body that goes by (first send only). */
export function keepBody(exchange: Exchange): void {
  (exchange as unknown as WithKept)[kKept] = { copy: new ReplayCopy(BODY_KEEP_LIMIT) };
  exchange.requestBody.on('data', onKeepBody);
}

function onKeepBody(this: Readable, chunk: Buffer): void {
  const kept = (exchangeOf(this) as unknown as WithKept)[kKept];
  if (kept === undefined || kept.copy === null) return;
  if (!kept.copy.add(chunk)) {
    kept.copy = null; // too large to replay: a refusal from now on is answered 503
    this.off('data', onKeepBody);
  }
}

/** The app answered: nothing will be replayed, so the copy goes (a long upload would hold it for its whole life). */
export function dropKeptBody(exchange: Exchange): void {
  const kept = (exchange as unknown as WithKept)[kKept];
  if (kept === undefined || kept.copy === null) return;
  kept.copy = null;
  exchange.requestBody.off('data', onKeepBody);
}

/** The body that went out so far, for a replay; null: more went out than was kept. */
export function keptBody(exchange: Exchange): Buffer[] | null {
  const kept = (exchange as unknown as WithKept)[kKept];
  if (kept === undefined) return [];
  return kept.copy === null ? null : kept.copy.size === 0 ? [] : [kept.copy.bytes()];
}

/**
 * A request waiting in the pool's queue, as the exchange's `upstream` meanwhile: the exchange's
 * cancel (its deadline, the caller gone) calls destroy(), which leaves the queue.
 */
export class WaitingRequest implements PoolWaiter, UpstreamRequest {
  readonly writableFinished = false;

  constructor(
    readonly exchange: Exchange,
    private readonly start: (exchange: Exchange, lease: Lease) => void,
    private readonly fail: (exchange: Exchange, err: Error) => void,
    private readonly leave: (waiter: WaitingRequest) => void,
  ) {}

  get caller(): string {
    return this.exchange.caller.id.uri;
  }

  /** Out of the queue (granted, failed or left): a second cancel (fail(), then callerClosed()) does nothing. */
  private over = false;

  granted(lease: Lease): void {
    this.over = true;
    this.start(this.exchange, lease);
  }

  failed(err: Error): void {
    this.over = true;
    this.fail(this.exchange, err);
  }

  destroy(): void {
    if (this.over) return;
    this.over = true;
    this.leave(this);
  }
}

/**
 * The app never processed this stream, so its request may be sent again whatever its method
 * (RFC 9113 §8.7): it refused it (REFUSED_STREAM), or the stream is above the last stream id
 * of a GOAWAY the app sent. nghttp2 resets the streams above the id REFUSED_STREAM only for a
 * GOAWAY with NO_ERROR; one with an error code has Node destroy the whole session, every stream
 * with that code, those the app never saw among them (a POST it never read was answered 502).
 */
export function neverProcessed(stream: ClientHttp2Stream, lease: Lease): boolean {
  if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) return true;
  const last = lease.goawayLastStreamId;
  if (last === undefined) return false;
  const id = stream.id;
  return id === undefined || id > last; // no id: it never left
}
