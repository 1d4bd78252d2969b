// Whether an upstream stream was never processed by its peer, so that sending its request
// again is safe whatever its method (RFC 9113 §8.7): the peer refused it (RST_STREAM
// REFUSED_STREAM), or its id is above the last stream id of a GOAWAY the peer sent.
// src/h2 says both with REFUSED_STREAM (connection-close.ts resets the streams above the last
// id so). Node's core http2 does only for a GOAWAY with NO_ERROR: a GOAWAY with an error code
// destroys the whole session, each stream with that code, those the peer never saw and those it
// may have run alike, so a POST above the last id was answered 502 where it could have been
// sent again. For that codec the session's GOAWAY is noted (watchGoaway, per session) and each
// stream keeps its session (noteSession: Node drops `stream.session` by the time it errors).

import { constants as h2 } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, Http2Session } from 'node:http2';
import type { UpstreamStream } from './upstream-stream.js';

const LAST_STREAM = Symbol('meshcar.goawayLastStreamId');
const SESSION = Symbol('meshcar.session');
const ERROR_GOAWAY = Symbol('meshcar.goawayWithError');

type Noted = ClientHttp2Session & { [LAST_STREAM]?: number; [ERROR_GOAWAY]?: true };

/** A node-codec session: the lowest last stream id of the GOAWAYs it gets is kept on it. */
export function watchGoaway(session: ClientHttp2Session): void {
  session.on('goaway', onGoaway);
}

// one shared listener (no closure per session); Node emits 'goaway' before it destroys the streams
function onGoaway(this: Noted, code: number, lastStreamId: number): void {
  if (code !== h2.NGHTTP2_NO_ERROR) this[ERROR_GOAWAY] = true;
  const known = this[LAST_STREAM];
  this[LAST_STREAM] = known === undefined ? lastStreamId : Math.min(known, lastStreamId);
}

/** A node-codec stream, as it is made: it keeps its session for neverProcessed(). */
export function noteSession(stream: ClientHttp2Stream): ClientHttp2Stream {
  (stream as ClientHttp2Stream & { [SESSION]?: Http2Session })[SESSION] = stream.session;
  return stream;
}

/** The session a node-codec stream was made on (noteSession), if noted. */
export function sessionOf(up: UpstreamStream): Http2Session | undefined {
  return (up as UpstreamStream & { [SESSION]?: Http2Session })[SESSION];
}

/**
 * Refused by the peer, or above its GOAWAY's last stream id (then without an id: never sent).
 * After a GOAWAY with an error code only the last id tells: Node gives every stream of the
 * session it destroys that code as its rstCode, so a GOAWAY(REFUSED_STREAM) naming this stream
 * as processed (id ≤ last) made its rstCode REFUSED_STREAM all the same, and a POST the peer's
 * app had run was sent again. (After a graceful GOAWAY a stream's own RST_STREAM still counts.)
 */
export function neverProcessed(up: UpstreamStream): boolean {
  const session = sessionOf(up) as Noted | undefined;
  if (session?.[ERROR_GOAWAY] !== true && up.rstCode === h2.NGHTTP2_REFUSED_STREAM) return true;
  const last = session?.[LAST_STREAM];
  if (last === undefined) return false;
  const id = (up as UpstreamStream & { id?: number }).id;
  return id === undefined || id > last;
}
