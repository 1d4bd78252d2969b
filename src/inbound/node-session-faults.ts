// http2.codec node: which errors of a caller's Node http2 session are the caller's fault, and
// under which meshcar_http2_sessions_closed_total reason they count. nghttp2 closes a session
// itself for floods and protocol violations (its ACK queue flooded by PINGs or SETTINGS, too
// many CONTINUATION frames, too many invalid frames, a protocol error) and Node only emits
// 'error' on the session: without this the node codec counted none of them and logged them at
// debug, while the same caller on the meshcar codec is counted and warned about. Node's error
// carries nghttp2's error number as `errno` (its NghttpError), the message only names it.
// Errors that are not the caller's doing (the socket failing, the caller's own GOAWAY with an
// error code: ERR_HTTP2_SESSION_ERROR) are not counted, as the meshcar codec does not.

import type { SessionRejectReason } from '../metrics/traffic.js';

// nghttp2.h error numbers that nghttp2_session_mem_recv returns for the peer's input
const NGHTTP2_ERR_PROTO = -505;
const NGHTTP2_ERR_FRAME_SIZE_ERROR = -522;
const NGHTTP2_ERR_HEADER_COMP = -523;
const NGHTTP2_ERR_FLOW_CONTROL = -524;
const NGHTTP2_ERR_SETTINGS_EXPECTED = -536;
const NGHTTP2_ERR_TOO_MANY_SETTINGS = -537;
const NGHTTP2_ERR_BAD_CLIENT_MAGIC = -903;
const NGHTTP2_ERR_FLOODED = -904;
const NGHTTP2_ERR_TOO_MANY_CONTINUATIONS = -905;

const BY_ERRNO: ReadonlyMap<number, SessionRejectReason> = new Map<number, SessionRejectReason>([
  [NGHTTP2_ERR_PROTO, 'protocol_error'],
  [NGHTTP2_ERR_FRAME_SIZE_ERROR, 'frame_size_error'],
  [NGHTTP2_ERR_HEADER_COMP, 'compression_error'],
  [NGHTTP2_ERR_FLOW_CONTROL, 'flow_control_error'],
  [NGHTTP2_ERR_SETTINGS_EXPECTED, 'bad_preface'],
  [NGHTTP2_ERR_BAD_CLIENT_MAGIC, 'bad_preface'],
  // over 32 entries in one SETTINGS frame (CVE-2020-11080): the meshcar codec calls it a flood too
  [NGHTTP2_ERR_TOO_MANY_SETTINGS, 'settings_flood'],
  // the caller made nghttp2 queue more answers (PING/SETTINGS ACKs, resets) than it lets wait
  [NGHTTP2_ERR_FLOODED, 'outbound_flood'],
  [NGHTTP2_ERR_TOO_MANY_CONTINUATIONS, 'continuation_flood'],
]);

/** The reason a Node http2 session error counts under when it is the caller's fault, else undefined. */
export function nodeSessionFault(err: Error & { code?: unknown; errno?: unknown }): SessionRejectReason | undefined {
  // Node's own limit on frames nghttp2 found invalid (maxSessionInvalidFrames, 1000): empty
  // DATA floods and the like
  if (err.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return 'protocol_error';
  if (err.code !== 'ERR_HTTP2_ERROR' || typeof err.errno !== 'number') return undefined;
  return BY_ERRNO.get(err.errno);
}
