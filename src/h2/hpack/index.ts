// HPACK (RFC 7541) for meshcar's own HTTP/2: the public surface the connection code uses.
//
// Contract in short:
// - HpackDecoder.decode(block) takes one complete header block (HEADERS + CONTINUATION payloads
//   concatenated; the frame layer bounds its total size) and returns [name, value, ...] as
//   latin1 strings. HpackError COMPRESSION_ERROR → connection error. HEADER_LIST_TOO_LARGE →
//   the block was fully processed and the table is consistent, so a stream error (431 /
//   RST_STREAM) is enough. Header-name rules (case, pseudo-headers, connection-specific fields)
//   are the HTTP/2 layer's job, not HPACK's.
// - HpackDecoder.setMaxTableSize(n) once the peer ACKs our SETTINGS_HEADER_TABLE_SIZE = n.
// - HpackEncoder.encode(list) → Buffer; setPeerMaxTableSize(n) when the peer's SETTINGS arrive.
//   Never indexed: authorization, proxy-authorization, set-cookie, cookie values under 20
//   octets, and any `sensitiveHeaders` option. x-forwarded-client-cert is indexed on purpose
//   (no secret in it, repeated on every request of a connection). See policy.ts.

export { HpackError, type HpackErrorCode } from './errors.js';
export { HpackDecoder, type HpackDecoderOptions, DEFAULT_HEADER_TABLE_SIZE, DEFAULT_MAX_HEADER_LIST_SIZE } from './decoder.js';
export { HpackEncoder, type HpackEncoderOptions } from './encoder.js';
export { NEVER_INDEXED_HEADERS, NOT_INDEXED_HEADERS } from './policy.js';
