// The HTTP/2 flow-control windows meshcar grants an h2c app on Node's http2 (the inbound's client
// toward an h2c app, the outbound's h2c listener), where Node's defaults are 64 KiB per stream
// and 64 KiB per connection.
//
// Why: Node returns a stream's credit only as it is read (backpressure, kept) but a connection's
// as soon as data arrives, so its 64 KiB connection window caps the bytes in flight on the whole
// connection: one round trip through a busy event loop per 64 KiB. Bulk h2c transfers through a
// pair ran at 80-110 MB/s against 130-180 for HTTP/1.1. The stream window is the meshcar codec's
// (src/h2/limits.ts, 256 KiB): what a stream whose reader is slow may hold unread. The connection
// window bounds only what is in flight, so it is a few streams' worth.
import type { ClientHttp2Session, ServerHttp2Session } from 'node:http2';

/** SETTINGS_INITIAL_WINDOW_SIZE we announce to an h2c app: what one unread stream may hold. */
export const APP_STREAM_WINDOW = 256 * 1024;
/** The connection window we grant an h2c app (WINDOW_UPDATE on stream 0 at once). */
export const APP_CONNECTION_WINDOW = 4 * 1024 * 1024;

/**
 * Grants the connection window. A server session may be given it at once; a client session
 * only once the app's SETTINGS came (Node before that has no handle to send it with:
 * nodejs/node#38426, as http2-wrapper does it).
 */
export function grantConnectionWindow(session: ClientHttp2Session | ServerHttp2Session): void {
  const grant = (): void => {
    if (!session.destroyed) session.setLocalWindowSize(APP_CONNECTION_WINDOW);
  };
  if (session.type === 0 /* NGHTTP2_SESSION_SERVER */) grant();
  else session.once('remoteSettings', grant);
}
