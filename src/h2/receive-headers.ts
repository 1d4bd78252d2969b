// What a complete received header block means (RFC 9113 §5.1 stream states, §8 HTTP
// semantics), for the connection's frame receiver (receive.ts): decoded first (the HPACK state
// must stay in step), then a new stream opened by the peer (or refused, answered 431, or
// ignored past our final GOAWAY), a response head or 1xx on a stream we opened, or trailers;
// and END_STREAM held to the announced content-length. Connection errors are thrown as
// ConnectionFault; stream errors go through streamError() (stream-registry.ts). Plain functions
// of the connection, so no object is made per stream or per frame for them.

import { ErrorCode } from './constants.js';
import type { H2Connection } from './connection.js';
import { ConnectionFault, protocolFault } from './errors.js';
import { HeadKind, parseHead } from './headers.js';
import { HpackError } from './hpack/index.js';
import { H2Stream } from './stream.js';
import { receiveEnd, receiveHead, receiveInformational, receiveTrailers } from './stream-receive-side.js';
import { isIdle, streamError, tooLargeAnswer } from './stream-registry.js';

/** END_STREAM on a stream (after DATA or a header block): the body must have been as long as announced. */
export function endOfStream(c: H2Connection, stream: H2Stream): void {
  if (stream.contentLength >= 0 && stream.dataReceived !== stream.contentLength) {
    return streamError(c, stream.id, ErrorCode.PROTOCOL_ERROR, 'content_length_mismatch');
  }
  receiveEnd(stream);
}

/** A complete header block: decoded first (the HPACK state must stay in step), then judged. */
export function headerBlock(c: H2Connection, block: Buffer): void {
  const { streamId, endStream, selfDependent } = c.blocks;
  let flat: string[] | undefined;
  let tooLarge = false;
  try {
    flat = c.decoder.decode(block);
  } catch (err) {
    if (!(err instanceof HpackError)) throw err;
    if (err.code !== 'HEADER_LIST_TOO_LARGE') throw new ConnectionFault('compression_error', ErrorCode.COMPRESSION_ERROR, err.message);
    tooLarge = true;
  }
  if (flat !== undefined && flat.length > 2 * c.limits.maxHeaderFields) tooLarge = true;
  const peerParity = (streamId & 1) === (c.isServer ? 1 : 0);
  if (c.isServer ? !peerParity : peerParity) throw protocolFault(`HEADERS on stream ${streamId}, whose id the peer may not use`, 'stream_id_error');
  const stream = c.streams.get(streamId);
  if (stream === undefined) {
    if (c.isServer && streamId > c.highestPeerStreamId) return openStream(c, streamId, flat, tooLarge, endStream, selfDependent);
    if (isIdle(c, streamId)) throw protocolFault(`HEADERS on idle stream ${streamId}`, 'stream_id_error');
    // closed: a response or trailers sent before our RST_STREAM (or our final GOAWAY) reached
    // the peer: decoded above (HPACK state), dropped here, within what closed streams may carry
    if (c.lateFrames.headers()) return;
    if (c.isServer) throw protocolFault(`HEADERS on stream ${streamId}, not above ${c.highestPeerStreamId} (reused or going backwards)`, 'stream_id_error');
    throw new ConnectionFault('stream_closed', ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
  }
  if (stream.remoteClosed) return streamError(c, streamId, ErrorCode.STREAM_CLOSED, 'stream_closed');
  if (tooLarge) return streamError(c, streamId, ErrorCode.ENHANCE_YOUR_CALM, 'header_list_too_large');
  if (selfDependent) return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'priority_self_dependency');
  if (!c.isServer && !stream.headReceived) return responseHead(c, stream, flat!, endStream);
  // trailers
  if (!endStream) return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'trailers_without_end_stream');
  const parsed = parseHead(flat!, HeadKind.Trailers);
  if (typeof parsed === 'string') return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'malformed_headers');
  // a content-length in trailers must be the body's length, as nghttp2 holds it (Node's codec
  // reset such a stream while ours passed it, the field dropped)
  if (parsed.contentLength >= 0 && parsed.contentLength !== stream.dataReceived) return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'content_length_mismatch');
  receiveTrailers(stream, parsed.headers);
  endOfStream(c, stream);
}

function openStream(c: H2Connection, streamId: number, flat: string[] | undefined, tooLarge: boolean, endStream: boolean, selfDependent: boolean): void {
  c.highestPeerStreamId = streamId;
  c.streamsOpenedByPeer++;
  // after our final GOAWAY: never processed (the peer may retry it elsewhere), and the last
  // stream id we name in any GOAWAY stays where the final one put it
  if (streamId > c.lastAcceptedStreamId) return notTaken(c, endStream);
  c.lastPeerStreamId = streamId;
  if (c.streams.size >= c.limits.maxConcurrentStreams || c.destroyed) {
    notTaken(c, endStream);
    return streamError(c, streamId, ErrorCode.REFUSED_STREAM, 'refused_stream', false);
  }
  if (tooLarge) {
    // the block was decoded in full: answer 431 rather than a bare reset
    notTaken(c, endStream);
    tooLargeAnswer(c, streamId, flat !== undefined && methodIsHead(flat));
    if (!endStream) c.writer.rstStream(streamId, ErrorCode.NO_ERROR);
    c.observer.streamError?.('header_list_too_large', ErrorCode.NO_ERROR);
    return;
  }
  if (selfDependent) {
    notTaken(c, endStream);
    return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'priority_self_dependency');
  }
  const parsed = parseHead(flat!, HeadKind.Request);
  if (typeof parsed === 'string') {
    notTaken(c, endStream);
    return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'malformed_headers');
  }
  if (endStream && parsed.contentLength > 0) return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'content_length_mismatch');
  const stream = new H2Stream(streamId, c, c.remoteSettings.initialWindowSize, c.limits.initialWindowSize);
  stream.contentLength = parsed.contentLength;
  stream.headReceived = true;
  stream.endAfterHeaders = endStream;
  // its answer has no body (respond() ends the stream with the head, as Node's does)
  stream.isHeadRequest = parsed.headers[':method'] === 'HEAD';
  c.streams.set(streamId, stream);
  // ended before the user sees it: a response sent in the 'stream' handler completes it
  if (endStream) receiveEnd(stream);
  c.emit('stream', stream, parsed.headers, endStream);
}

/** A new stream we do not take: the body the peer may have sent behind its head is ignored when it comes. */
function notTaken(c: H2Connection, endStream: boolean): void {
  if (!endStream) c.lateFrames.expect(c.limits.initialWindowSize);
}

function responseHead(c: H2Connection, stream: H2Stream, flat: string[], endStream: boolean): void {
  const parsed = parseHead(flat, HeadKind.Response);
  if (typeof parsed === 'string') return streamError(c, stream.id, ErrorCode.PROTOCOL_ERROR, 'malformed_headers');
  const status = parsed.headers[':status'] as string;
  if (status.charCodeAt(0) === 0x31 /* 1xx */) {
    if (endStream) return streamError(c, stream.id, ErrorCode.PROTOCOL_ERROR, 'malformed_headers');
    // their number is bounded by their size, as Go's client bounds it: all 1xx heads of a
    // stream together within one header list (at least 42 bytes each: 1,560 at 64 KiB)
    for (let i = 0; i < flat.length; i += 2) stream.informationalBytes += flat[i]!.length + flat[i + 1]!.length + 32;
    if (stream.informationalBytes > c.limits.maxHeaderListSize) return streamError(c, stream.id, ErrorCode.PROTOCOL_ERROR, 'header_list_too_large');
    return receiveInformational(stream, parsed.headers);
  }
  // a HEAD response, 204 and 304 have no body whatever length they announce (RFC 9110 §6.4.1):
  // DATA with any payload is a content-length mismatch, as nghttp2 holds them to length 0
  stream.contentLength = stream.isHeadRequest || status === '204' || status === '304' ? 0 : parsed.contentLength;
  // a head that ends the stream while announcing content (a 205 with its length) is refused
  // before it is handed on, as a request's is: once handed on, an HTTP/1.1 app had its head
  // written and then the connection cut (an empty reply), not our 502
  if (endStream && stream.contentLength > 0) return streamError(c, stream.id, ErrorCode.PROTOCOL_ERROR, 'content_length_mismatch');
  receiveHead(stream, parsed.headers, endStream, flat);
  if (endStream && !stream.remoteClosed) endOfStream(c, stream);
}

/** The request head's :method is HEAD (pseudo-headers come first, so the scan is short). */
function methodIsHead(flat: readonly string[]): boolean {
  for (let i = 0; i < flat.length && flat[i]!.charCodeAt(0) === 0x3a; i += 2) if (flat[i] === ':method') return flat[i + 1] === 'HEAD';
  return false;
}
