// An HTTP/2 session from a caller, whichever codec carries it: Node's ServerHttp2Session
// (http2.codec: node) or meshcar's H2Connection (http2.codec: meshcar). Draining and the
// connection lifetime need only this much: a graceful close (GOAWAY, streams in flight
// finish), a hard stop, and whether it is already going.

export interface CallerSession {
  /** Graceful: GOAWAY, no new streams, those in flight finish, then the connection ends. */
  close(): void;
  /** Now: every stream reset, the socket closed. */
  destroy(): void;
  readonly destroyed: boolean;
  /** Node: close() was called. */
  readonly closed?: boolean;
  /** meshcar: GOAWAY sent or received. */
  readonly closing?: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** Closing or gone already: a second GOAWAY would add nothing. */
export function isWindingDown(session: CallerSession): boolean {
  return session.closed === true || session.closing === true || session.destroyed;
}
