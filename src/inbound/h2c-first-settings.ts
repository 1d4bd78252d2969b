// The bound on a new h2c session's wait for the app's first SETTINGS frame. An app that accepts
// the TCP connection and then says nothing (hung, its event loop stuck, or not an HTTP/2 server
// at all but one that waits for its own protocol) left the session in the pool for ever: Node's
// client never gives up on it, every request on it (and those queued behind its one cold
// stream) waited for `inbound.timeout`, and no fresh connection was ever tried. Past the bound
// the session is destroyed with an error saying what was missing: its requests and those
// waiting for a slot are answered 503 upstream_unavailable (app-errors.ts), the session leaves
// the pool, and the next request dials afresh. A connection not even up by then says that
// instead (ETIMEDOUT: the app unreachable), as the HTTP/1.1 client's connect timeout does.

import type { ClientHttp2Session } from 'node:http2';
import { appClientError } from './app-dispatch.js';

/** The app's first SETTINGS must come within this of the connection's start: the HTTP/1.1 client's connect bound. */
export const FIRST_SETTINGS_MS = 10_000;

/** The error code of a session the app accepted but never sent SETTINGS on. */
export const APP_SILENT_SESSION = 'APP_H2C_NO_SETTINGS';

/**
 * Calls `onSilent` with an error naming what was missing unless the app's first SETTINGS arrive
 * within `ms`; it must destroy the session (with that error: its streams get it).
 */
export function boundFirstSettings(session: ClientHttp2Session, ms: number, onSilent: (err: Error) => void): void {
  const timer = setTimeout(() => {
    if (session.destroyed) return;
    onSilent(
      session.connecting
        ? appClientError('ETIMEDOUT', `no connection to the app within ${ms} ms`)
        : // no subject: app-errors.ts puts the app's address in front
          appClientError(APP_SILENT_SESSION, `accepted the connection but did not speak HTTP/2 (no SETTINGS frame within ${ms} ms): hung, or not an HTTP/2 server`),
    );
  }, ms);
  // the session's socket holds the process while it lives; the bound itself never does
  timer.unref();
  const clear = (): void => clearTimeout(timer);
  session.once('remoteSettings', clear);
  session.once('close', clear);
}
