// Core http2 ends a stream's readable side itself when the stream closes before the peer's
// END_STREAM (RST_STREAM NO_ERROR in the middle of a body, which RFC 9113 §8.1 allows only after
// a complete answer, or a session that went away): its 'end' then looks like a whole body's,
// with rstCode 0, and a relay that trusts it passes a truncated body off as complete. The end
// Node pushes then is noted: the stream is already closed, where the peer's own END_STREAM comes
// before the close. Used on core http2 client streams of both directions (the outbound toward
// upstreams with `http2.codec: node`, the inbound toward an h2c app); src/h2's streams end only
// on END_STREAM and need none of it.

import { Readable, type Duplex } from 'node:stream';

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
