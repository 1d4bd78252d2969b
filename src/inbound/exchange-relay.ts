// The shared listeners that move an exchange's body bytes (exchange.ts): the app's response
// body relayed to the caller, and the caller's upload counted. Both count bytes for the access
// log and keep the idle clock going (exchange-deadlines.ts); they find their exchange noted on
// the emitter (bindExchange), so a request costs no closures.

import type { Readable, Writable } from 'node:stream';
import { touch } from './exchange-deadlines.js';
import type { Exchange } from './exchange.js';
import { exchangeOf } from './exchange-links.js';

/**
 * Copies the app's response body to the caller, as pipe() would (backpressure included) but
 * with one shared 'data' listener instead of pipe()'s set of per-request listeners. The end of
 * the body is the forwarder's to handle (it adds trailers): this never ends the sink.
 */
export function relayBody(source: Readable, exchange: Exchange): void {
  exchange.relaySource = source;
  source.on('data', onRelayData);
}

function onRelayData(this: Readable, chunk: Buffer): void {
  const exchange = exchangeOf(this);
  touch(exchange);
  exchange.bytesOut += chunk.length;
  const sink = exchange.responseSink as Writable;
  if (sink.destroyed || sink.writableEnded) return; // the caller is gone; the exchange says how
  if (!sink.write(chunk)) {
    this.pause();
    sink.once('drain', onRelayDrain);
  }
}

function onRelayDrain(this: Writable): void {
  const source = exchangeOf(this).relaySource;
  if (source !== undefined && !source.destroyed) source.resume();
}

/** A 'data' listener on the caller's request body: the upload counts as activity. */
export function onRequestData(this: Readable, chunk: Buffer): void {
  const exchange = exchangeOf(this);
  touch(exchange);
  exchange.bytesIn += chunk.length;
}
