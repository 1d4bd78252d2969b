// The peer's side of one stream, as the connection's frame receiver (receive.ts) hands it
// over: heads, informational heads and trailers become events, DATA goes into the readable
// buffer (or is held compactly while the consumer is behind: stream-held-body.ts) and its
// credit goes back only as the consumer takes it, END_STREAM ends the readable,
// and a reset or a lost connection ends the stream (with an error unless it was a clean stop).
// Plain functions of the H2Stream, so no object is made per stream or per frame for them.

import { ErrorCode, errorCodeName } from './constants.js';
import { H2StreamError } from './errors.js';
import type { IncomingHeaders } from './headers.js';
import type { H2Stream } from './stream.js';
import { consumerWaiting, holdData, holdUntilReadEnds, isSmallPayload, ownBytes, releaseAfterRead, releaseHeld, settleReadPending } from './stream-held-body.js';
import { checkClosed, dropOutput } from './stream-send-side.js';

export function receiveData(stream: H2Stream, data: Buffer): void {
  stream.dataReceived += data.length;
  if (data.length === 0) return;
  stream.pushedBytes += data.length;
  if (isSmallPayload(data)) {
    // coalesced with the other small payloads of this socket read, handed over as one piece
    // when the read ends: a peer's 1-byte frames cost a piece per read, not per byte
    holdUntilReadEnds(stream, data);
    if (!stream.releaseQueued) {
      stream.releaseQueued = true;
      stream.host.releaseAfterRead(stream);
    }
    return;
  }
  // a consumer that keeps up (or waits for a push: Node's needReadable, e.g. a read(n) that
  // found too little) gets it now, after anything held, so it arrives in order; else it is
  // held until the consumer reads (stream-held-body.ts)
  settleReadPending(stream); // this read's small payloads came first
  if (consumerWaiting(stream)) {
    if (stream.heldBytes > 0) releaseHeld(stream);
    if (!stream.destroyed) stream.push(ownBytes(data));
  } else holdData(stream, data);
  returnConsumedCredit(stream);
}

/** A socket read ended: the small payloads it brought go to consumers that wait, one piece per stream. */
export function releaseReadPieces(streams: readonly H2Stream[]): void {
  for (const stream of streams) {
    releaseAfterRead(stream);
    if (!stream.destroyed) returnConsumedCredit(stream);
  }
}

export function receiveEnd(stream: H2Stream): void {
  stream.remoteClosed = true;
  endReadable(stream);
  checkClosed(stream);
}

/** What came of the body goes to the consumer (held pieces first), then its end. */
function endReadable(stream: H2Stream): void {
  settleReadPending(stream);
  releaseHeld(stream);
  stream.push(null);
}

/** `flat`: the block as decoded (and checked), passed on as Node passes rawHeaders. */
export function receiveHead(stream: H2Stream, headers: IncomingHeaders, endStream: boolean, flat: readonly string[]): void {
  stream.headReceived = true;
  stream.endAfterHeaders = endStream;
  stream.emit('response', headers, endStream, flat);
}

export function receiveInformational(stream: H2Stream, headers: IncomingHeaders): void {
  stream.emit('headers', headers);
  if (headers[':status'] === '100') stream.emit('continue');
}

export function receiveTrailers(stream: H2Stream, trailers: IncomingHeaders): void {
  stream.emit('trailers', trailers);
}

/** The peer reset the stream, or the connection ended it (GOAWAY, loss). */
export function receiveReset(stream: H2Stream, code: number, reason: H2StreamError['reason']): void {
  stream.rstCode = code;
  const endReceived = stream.remoteClosed;
  // or every byte of the answer's content-length came: the reset overtook an END_STREAM queued
  // behind it (nghttp2 sends a server's reset ahead of its DATA frames still queued)
  const bodyComplete = endReceived || (stream.headReceived && stream.contentLength >= 0 && stream.dataReceived === stream.contentLength);
  stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
  dropOutput(stream);
  // RST_STREAM NO_ERROR after a complete answer (RFC 9113 §8.1): the body stays readable. Only
  // a client is told this (the server had its say and stops our upload); a server told it by
  // its client, whose request was complete, still owes an answer nobody will take: that is a
  // cancel, and keeping the stream would keep the request (and its app call) for ever
  if (code === ErrorCode.NO_ERROR && bodyComplete && !stream.host.isServer) {
    if (!endReceived) endReadable(stream);
    if (stream.readableEnded) stream.destroy();
    else stream.once('end', () => stream.destroy());
    return;
  }
  if (!stream.readableEnded) stream.emit('aborted');
  const err = code === ErrorCode.NO_ERROR || code === ErrorCode.CANCEL ? undefined : new H2StreamError(reason, code, `stream ${stream.id} ended: ${errorCodeName(code)}`);
  stream.destroy(err);
}

/** The connection is gone: the stream ends with `err` unless it already completed. */
export function loseStream(stream: H2Stream, err: Error): void {
  stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
  dropOutput(stream);
  if (stream.destroyed) return;
  if (!stream.readableEnded) stream.emit('aborted');
  stream.destroy(err);
}

/** Returns the credit for what the consumer has taken since last time. */
export function returnConsumedCredit(stream: H2Stream): void {
  const taken = stream.pushedBytes - stream.readableLength - stream.creditedBytes;
  if (taken > 0) {
    stream.creditedBytes += taken;
    stream.host.returnCredit(stream, taken);
  }
}
