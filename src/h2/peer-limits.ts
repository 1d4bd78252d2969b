// What the peer's SETTINGS let us send (RFC 9113 §5.1.2, §6.5.2): as many streams of ours at
// once as its SETTINGS_MAX_CONCURRENT_STREAMS, and heads within its SETTINGS_MAX_HEADER_LIST_SIZE
// (RFC 7541 sizes). Beyond them the peer refuses the stream or, as python-h2 does, ends the
// whole connection with every other stream on it; so a request is refused here before it takes
// a stream id, and any other head (response, 1xx, trailers) resets its stream instead of going out.

import { ErrorCode } from './constants.js';
import type { H2Connection } from './connection.js';
import { HeaderListTooLargeError, StreamLimitError } from './errors.js';
import type { OutgoingHeaders } from './headers.js';
import { headerListSize, headerObjectSize } from './headers-outgoing.js';
import type { H2Stream } from './stream.js';

/** request(): throws while as many of our streams are open as the peer allows. */
export function checkStreamSlot(c: H2Connection): void {
  if (c.streams.size >= c.remoteSettings.maxConcurrentStreams) throw new StreamLimitError(`the peer allows ${c.remoteSettings.maxConcurrentStreams} concurrent streams`);
}

/** request(): throws for a head above the peer's header list size (as Go's client refuses it). */
export function checkRequestHead(c: H2Connection, flat: readonly string[]): void {
  const size = overPeerLimit(c, flat);
  if (size > 0) throw new HeaderListTooLargeError(size, c.remoteSettings.maxHeaderListSize);
}

/**
 * Any other head: above the peer's limit it is not sent, and the stream is reset with
 * INTERNAL_ERROR and destroyed with HeaderListTooLargeError, as nghttp2 (Node's codec) resets a
 * stream whose header block it cannot send; a made-up 500 would hide that the app's response
 * was lost, and could not stand in for trailers. Returns false then.
 */
export function headFitsPeer(c: H2Connection, stream: H2Stream, flat: readonly string[]): boolean {
  const size = overPeerLimit(c, flat);
  if (size === 0) return true;
  stream.rstCode = ErrorCode.INTERNAL_ERROR;
  c.resetStream(stream, ErrorCode.INTERNAL_ERROR);
  stream.destroy(new HeaderListTooLargeError(size, c.remoteSettings.maxHeaderListSize));
  return false;
}

/**
 * A server's response head measured before respond(): the error headFitsPeer would reset the
 * stream with, or undefined if it fits. The sidecar asks first, so it can answer the stream with
 * its own small error head instead of a reset that leaves the caller without a status.
 */
export function responseHeadOverPeer(c: PeerSettingsHolder, headers: OutgoingHeaders | readonly string[]): HeaderListTooLargeError | undefined {
  if (c.remoteSettings.maxHeaderListSize === Infinity) return undefined;
  // a list goes out as it is, so it is measured as it is; an object where it is, not flattened
  // (respond() flattens it once, as it sends)
  const limit = c.remoteSettings.maxHeaderListSize;
  const size = Array.isArray(headers) ? headerListSize(headers as readonly string[]) : headerObjectSize(headers as OutgoingHeaders);
  return size > limit ? new HeaderListTooLargeError(size, limit) : undefined;
}

/** What of a connection the measures need: the peer's settings. */
type PeerSettingsHolder = Pick<H2Connection, 'remoteSettings'>;

/** The RFC 7541 size of `flat` if it is above the peer's SETTINGS_MAX_HEADER_LIST_SIZE, else 0 (no loop while the peer set none). */
function overPeerLimit(c: PeerSettingsHolder, flat: readonly string[]): number {
  const limit = c.remoteSettings.maxHeaderListSize;
  if (limit === Infinity) return 0;
  const size = headerListSize(flat);
  return size > limit ? size : 0;
}
