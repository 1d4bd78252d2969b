// An HTTP/2 caller's request whose head says `content-length: 0` but leaves its stream open (no
// END_STREAM) is held until the stream ends, then goes to the app with an empty body. Forwarded
// at once, an HTTP/1.1 app read `Content-Length: 0` as the whole request and acted on it; DATA
// that came after made the request malformed (RFC 9113 §8.1.1: content-length against the DATA
// received), both codecs reset the stream, and the app had run a request nobody got the answer
// to. Held, such DATA ends it here (the codec's reset) and nothing reaches the app. A client
// that means an empty body sends END_STREAM at once (an empty DATA frame, or its trailers), so
// the hold costs it nothing. The outbound holds an app's h2c request alike (its own
// empty-body-hold.ts, on Node's server stream).

import { PassThrough, type Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { DONE, type Exchange } from './exchange.js';
import { bindExchange, exchangeOf } from './exchange-links.js';
import { isWholeCallerBody } from './app-http1-node.js';

/** A request with a body to come whose declared length is zero (leading zeros are still zero). */
export function declaresEmptyBody(exchange: Exchange): boolean {
  if (!exchange.requestHasBody) return false;
  const declared = exchange.requestHeaders['content-length'];
  return declared !== undefined && /^0+$/.test(declared);
}

/** Waits for the caller's end of `exchange`'s body; then `next` with an empty body in its place, unless it was cut. */
export function holdUntilEnd(exchange: Exchange, next: (exchange: Exchange) => void): void {
  const body = exchange.requestBody;
  bindExchange(body, exchange);
  // an HTTP/2 caller's trailers come as an event during the wait (an h2c app sends them on)
  body.on('trailers', onCallerTrailers);
  body.once('end', () => {
    body.off('trailers', onCallerTrailers);
    // the caller gone, a deadline passed, or a reset ending the body like a finished one
    if (exchange.phase === DONE || !isWholeCallerBody(body, exchange)) return;
    exchange.bodyReplacement = new PassThrough().end();
    next(exchange);
  });
  body.resume();
}

function onCallerTrailers(this: Readable, trailers: IncomingHttpHeaders): void {
  exchangeOf(this).callerTrailers = trailers;
}
