// What the sidecar uses of a server-side HTTP/2 stream, whichever codec carries it: Node's
// ServerHttp2Stream (http2.codec: node) and meshcar's H2Stream (http2.codec: meshcar) both
// fit, since H2Stream follows Node's names. Typing against this, not ServerHttp2Stream, keeps
// the exchange code one path for both codecs.

import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';

export interface H2RespondOptions {
  readonly endStream?: boolean;
  readonly waitForTrailers?: boolean;
}

export interface H2ServerStream extends Duplex {
  /** The response head went out. */
  readonly headersSent: boolean;
  respond(headers: OutgoingHttpHeaders, options?: H2RespondOptions): void;
  /** An informational (1xx) head, e.g. 100 Continue. */
  additionalHeaders(headers: OutgoingHttpHeaders): void;
  /** After 'wantTrailers': ends the stream with a trailers block. */
  sendTrailers(headers: OutgoingHttpHeaders): void;
  /** RST_STREAM with `code`. */
  close(code?: number): void;
  /**
   * meshcar's codec only: our side ended (END_STREAM or RST_STREAM sent, or a reset received),
   * set at once, while Node's `closed` waits for the 'close' event. Node's streams lack it.
   */
  readonly localClosed?: boolean;
  /**
   * meshcar's codec only: the caller's own deadline for the request (grpc-timeout,
   * x-request-timeout), which its rapid-reset count reads (h2/limits.ts peerResetKind).
   */
  callerDeadlineMs?: number;
}
