// http2.codec node: the bytes of the PING frames written on a caller's session (the silent
// session probe's own, node-session-probe.ts, and nghttp2's ACK of each the caller sends). The
// node codec's streams count nothing of their own, so an answer's delivery is read from the
// connection's bytes written (http2-exchange.ts deliveryMark); a PING is no answer moving, but
// counted as one, a caller that never took its answer kept its stream for good: our probe PINGs
// an idle caller every 30 s, a gRPC client's keepalive PINGs us, both within the 5-minute idle
// timeout. (Other control frames a caller can provoke, a SETTINGS ACK, a WINDOW_UPDATE for its
// upload, still count; a caller doing that on purpose holds its own stream, as one reading a
// byte per idle period does.)

import type { ServerHttp2Session } from 'node:http2';

/** A PING frame: its 9-byte frame head and 8-byte payload. */
const PING_FRAME_BYTES = 17;
const kPingBytes = Symbol('meshcar.inbound.pingBytes');

type Counted = ServerHttp2Session & { [kPingBytes]?: number };

/** Counts the ACK nghttp2 writes for each PING the caller sends. */
export function countPingAcks(session: ServerHttp2Session): void {
  (session as Counted)[kPingBytes] = 0;
  session.on('ping', onPing);
}

function onPing(this: ServerHttp2Session): void {
  (this as Counted)[kPingBytes] = ((this as Counted)[kPingBytes] ?? 0) + PING_FRAME_BYTES;
}

/** Our own PING went out on `session`. */
export function pingSent(session: ServerHttp2Session): void {
  (session as Counted)[kPingBytes] = ((session as Counted)[kPingBytes] ?? 0) + PING_FRAME_BYTES;
}

/** The PING bytes written on `session` so far (0 for one not counted). */
export function pingBytesOf(session: unknown): number {
  return (session as Counted | undefined)?.[kPingBytes] ?? 0;
}
