// How many fields a request head toward an upstream sidecar may carry, and how many its answer
// may: the inbound's limit (Node's maxHeaderListPairs, src/h2's maxHeaderFields: 256, pseudo-
// headers included). A request over it would be reset by the peer (ENHANCE_YOUR_CALM on Node's
// codec, a bare 431 on ours) and held against a healthy endpoint: the outbound answers 431
// headers_too_large itself instead, as it does for a head over its byte limit. Node's HTTP/2
// client is given the same limit for answers (its default is 128, so 150 Set-Cookie fields
// the inbound relays were reset), as src/h2's client has by default.

import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { MeshcarError } from '../errors.js';
import { CONTENT_LENGTH_MAX_DIGITS, H2Stream, HeaderListTooLargeError } from '../h2/index.js';
import { headFields, headObjectBytes } from '../http/head-list-bytes.js';
import type { UpstreamStream } from './upstream-stream.js';

export const UPSTREAM_MAX_HEAD_FIELDS = 256;
/**
 * Decoded bytes (RFC 7541 sizes: name + value + 32 per field) of an answer head we relay: the
 * meshcar codec's client holds it while decoding (src/h2/limits.ts, 64 KiB). Node's client
 * holds an answer to 256 fields but not in bytes (its SETTINGS_MAX_HEADER_LIST_SIZE, this
 * limit as pool-failover.ts advertises it, applies to none of the streams opened before the
 * upstream acknowledges it, and an upstream never has to), so an upstream's HPACK bomb (a 4 KB field in the dynamic table, then one byte per
 * reference) reached the app as a 1 MB head from about 4 KB on the wire: attempt-answer.ts
 * checks the decoded list against this.
 */
export const UPSTREAM_MAX_HEAD_BYTES = 64 * 1024;

/**
 * The most significant digits of a Content-Length an upstream sidecar takes: what src/h2 reads
 * (Node's codec reads 18, int64). A request announcing a longer body would be reset there
 * (PROTOCOL_ERROR, a 502) and held against a healthy endpoint.
 */
const UPSTREAM_MAX_LENGTH_DIGITS = CONTENT_LENGTH_MAX_DIGITS;

/**
 * Why a request head cannot go to an upstream sidecar as it is (431 over its field count, 413
 * over its Content-Length), or undefined: the outbound answers these itself, sending nothing.
 */
export function upstreamHeadProblem(headers: OutgoingHttpHeaders | readonly string[], reqHeaders: IncomingHttpHeaders): MeshcarError | undefined {
  const fields = headFieldCount(headers);
  if (fields > UPSTREAM_MAX_HEAD_FIELDS) {
    return new MeshcarError('headers_too_large', `the request head has ${fields} fields upstream (pseudo-headers included), over the ${UPSTREAM_MAX_HEAD_FIELDS} an upstream sidecar accepts`);
  }
  // the listeners let through only digits here (Node's parsers refuse anything else); the
  // leading zeros are looked at only in a value that long (no regular expression per request)
  const written = reqHeaders['content-length'];
  const length = written !== undefined && written.length > UPSTREAM_MAX_LENGTH_DIGITS ? written.replace(/^0+(?=\d)/, '') : undefined;
  if (length !== undefined && length.length > UPSTREAM_MAX_LENGTH_DIGITS) {
    return new MeshcarError('body_too_large', `the request announces a body of ${length} bytes (Content-Length), over the ${UPSTREAM_MAX_LENGTH_DIGITS} digits an upstream sidecar accepts`);
  }
  return undefined;
}

/**
 * Why the app's request trailers cannot go to an upstream sidecar (431 over its field count,
 * which holds for a trailer section as for the head, or over the header list size it
 * advertised), or undefined. Sent, they were reset there (or, on the meshcar codec, not sent
 * and the stream reset here), read as the endpoint's failure: a 502 held against a healthy
 * endpoint, its session retired, a new mTLS handshake on both sidecars per request.
 */
export function upstreamTrailersProblem(trailers: OutgoingHttpHeaders, up: UpstreamStream): MeshcarError | undefined {
  const fields = headFields(trailers);
  if (fields > UPSTREAM_MAX_HEAD_FIELDS) return new MeshcarError('headers_too_large', `the request trailers have ${fields} fields upstream, over the ${UPSTREAM_MAX_HEAD_FIELDS} an upstream sidecar accepts`);
  const size = headObjectBytes(trailers as Parameters<typeof headObjectBytes>[0]);
  const limit = peerHeaderListSize(up);
  if (size <= limit) return undefined;
  return new MeshcarError('headers_too_large', `the request trailers are ${size} bytes (RFC 7541 sizes), over the ${limit} the upstream accepts (its SETTINGS_MAX_HEADER_LIST_SIZE)`);
}

/** `:scheme: https`, which Node's client adds to a head that has none, in RFC 7541 sizes. */
const SCHEME_FIELD_BYTES = ':scheme'.length + 'https'.length + 32;

/**
 * Throws, as src/h2's request() does (HeaderListTooLargeError, nothing sent), for a request
 * head above the SETTINGS_MAX_HEADER_LIST_SIZE of a session of Node's codec. Node's client
 * sends it, the upstream resets it (ENHANCE_YOUR_CALM), and that reads as the endpoint's
 * failure: a 502 after two retries, each on a new session (a new mTLS handshake on both
 * sidecars) and a latency penalty on healthy endpoints, where the meshcar codec answers 431.
 */
export function refuseOverPeerList(session: ClientHttp2Session, headers: OutgoingHttpHeaders): void {
  const limit = session.remoteSettings.maxHeaderListSize;
  if (limit === undefined) return;
  const size = headObjectBytes(headers as Parameters<typeof headObjectBytes>[0]) + (headers[':scheme'] === undefined ? SCHEME_FIELD_BYTES : 0);
  if (size > limit) throw new HeaderListTooLargeError(size, limit);
}

/** The upstream's SETTINGS_MAX_HEADER_LIST_SIZE as its session last said it (Infinity: none said, or the session is gone). */
function peerHeaderListSize(up: UpstreamStream): number {
  if (up instanceof H2Stream) return up.host.remoteSettings.maxHeaderListSize;
  try {
    return (up as { session?: { remoteSettings?: { maxHeaderListSize?: number } } }).session?.remoteSettings?.maxHeaderListSize ?? Infinity;
  } catch {
    return Infinity; // Node's remoteSettings throws once the session is destroyed: the send fails on its own
  }
}

/** Fields on the wire of a head given as an object (an array value is one field each; Node adds :scheme) or a flat list. */
export function headFieldCount(headers: OutgoingHttpHeaders | readonly string[]): number {
  if (Array.isArray(headers)) return headers.length / 2;
  // Node's client adds :scheme to an object that has none
  return headFields(headers as OutgoingHttpHeaders) + ((headers as OutgoingHttpHeaders)[':scheme'] === undefined ? 1 : 0);
}
