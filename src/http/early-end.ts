// Core http2 ends a stream's readable side itself when the stream closes before the peer's
// END_STREAM (RST_STREAM NO_ERROR in the middle of a body, which RFC 9113 §8.1 allows only after
// a complete answer, or a session that went away): its 'end' then looks like a whole body's,
// with rstCode 0, and a relay that trusts it passes a truncated body off as complete. The end
// Node pushes then is noted: the stream is already closed, where the peer's own END_STREAM comes
// before the close. Used on core http2 client streams of both directions (the outbound toward
// upstreams with `http2.codec: node`, the inbound toward an h2c app); src/h2's streams end only
// on END_STREAM and need none of it. A request body on core http2 server streams (the inbound's
// callers on `http2.codec: node`, the outbound's h2c apps) gets no such end at all
// (refuseEarlyEnd): the stream is destroyed instead, as src/h2's is.

import type { IncomingHttpHeaders } from 'node:http2';
import { Readable, type Duplex } from 'node:stream';
import { isGrpcRequest } from './grpc-status.js';

const ENDED_EARLY = Symbol('meshcar.endedEarly');
type Watched = Duplex & { [ENDED_EARLY]?: true; readonly closed: boolean; _readableState: { ended: boolean } };

/** Notes an end Node pushes for `stream` without the peer's END_STREAM. One shared function installed on the stream: no closure per request. */
export function watchEarlyEnd<S extends Duplex>(stream: S): S {
  stream.push = pushNotingEarlyEnd;
  return stream;
}

function pushNotingEarlyEnd(this: Watched, chunk: unknown, encoding?: BufferEncoding): boolean {
  if (chunk === null && this.closed && !this._readableState.ended) this[ENDED_EARLY] = true;
  return Readable.prototype.push.call(this, chunk, encoding);
}

/** Whether the stream's body ended without the peer's END_STREAM (see watchEarlyEnd). */
export function endedEarly(stream: Duplex): boolean {
  return (stream as Watched)[ENDED_EARLY] === true;
}

/**
 * The length an answer that ended early (endedEarly) is whole at: its Content-Length, when every
 * byte of it came and the reset only overtook the END_STREAM still queued behind them (nghttp2
 * sends a server's own RST_STREAM(NO_ERROR) first: Node's http2 server resets a stream whose
 * request it never read so). -1 when no length vouches for it: none given, or trailers were
 * still due (a gRPC answer's status, fields a `trailer` head field announced), which the length
 * does not cover.
 */
export function wholeAtLength(head: IncomingHttpHeaders): number {
  const length = head['content-length'];
  if (typeof length !== 'string' || !/^\d{1,15}$/.test(length) || head.trailer !== undefined || isGrpcRequest(head['content-type'])) return -1;
  return Number(length);
}

/**
 * A core http2 server stream (the inbound's caller on `http2.codec: node`, the outbound's h2c
 * app) whose request body Node would end without the peer's END_STREAM (our RST_STREAM NO_ERROR
 * after a complete answer, or the peer's own) is destroyed instead: no 'end', only 'close', as
 * src/h2's streams do. Every reader of the body (the pipe to an h2c app or an upstream, the
 * HTTP/1.1 writers, a schema check) then sees a cut body, never a whole one: an upload to an h2c
 * app got END_STREAM after its first 64 KiB, and one an app reset reached its upstream ended.
 * Two edges, both on the cut side: our own close(NO_ERROR) marks the stream closed before its
 * RST_STREAM goes out, so a caller's END_STREAM landing in between reads as early too (the
 * upload was being stopped anyway); and a close in the very read that brought the HEADERS
 * comes before this is installed, which only a reset before any answer can do ('aborted').
 */
export function refuseEarlyEnd<S extends Duplex>(stream: S): S {
  stream.push = pushRefusingEarlyEnd;
  return stream;
}

function pushRefusingEarlyEnd(this: Watched, chunk: unknown, encoding?: BufferEncoding): boolean {
  if (chunk === null && this.closed && !this._readableState.ended) {
    // what is buffered of the body goes with it: nobody is to take a part of it for the whole.
    // After this turn: Node's close handler, which pushed, reads the stream's session after
    // the push, and destroy() takes that away
    process.nextTick(destroyStream, this);
    return false;
  }
  return Readable.prototype.push.call(this, chunk, encoding);
}

function destroyStream(stream: Duplex): void {
  stream.destroy();
}
