// What a user of H2Connection passes in: the connection's options (role, limits, HPACK's
// Huffman choice, bytes already read), the observer its metrics hang on, and the options of
// a client's request(). Types only; connection.ts re-exports them.

import type { ConnectionCloseReason, StreamErrorReason } from './errors.js';
import type { H2Limits } from './limits.js';
import type { ReceiveBudget } from './receive-budget.js';

export interface H2Observer {
  /** Once per connection, when it is gone. */
  connectionClosed?(reason: ConnectionCloseReason, h2Code: number): void;
  /** Each stream error we raised (RST_STREAM sent because of the peer). */
  streamError?(reason: StreamErrorReason, h2Code: number): void;
}

export interface H2ConnectionOptions {
  readonly role: 'client' | 'server';
  readonly limits?: Partial<H2Limits>;
  readonly observer?: H2Observer;
  /**
   * Huffman-code header strings when shorter (default false: raw literals). On the sidecar hop
   * the quarter of a string it saves costs CPU on both sides: encode and decode of a request
   * with a request id and a traceparent 1.3 µs more, with an 800-character bearer token 13.5 µs
   * more (3.5 -> 2.2 and 19.6 -> 6.1 µs). HAProxy's encoder never Huffman-codes either; the
   * decoder reads both, as every peer must.
   */
  readonly huffman?: boolean;
  /**
   * More header names to send as never-indexed literals, out of the HPACK dynamic table (RFC
   * 7541 §7.1.3); the codec always treats authorization, proxy-authorization, set-cookie and
   * cookie values under 20 octets so (hpack/policy.ts).
   */
  readonly sensitiveHeaders?: Iterable<string>;
  /** Bytes already read from the socket (e.g. by a protocol sniffer), processed first. */
  readonly head?: Buffer;
  /**
   * Server: the answer to a request whose header block is over the limits (size or field
   * count), sent with :status 431 in place of a bare one: its fields (names lower-case,
   * content-length included) and body. The body goes out only if the peer's windows take it
   * at once (the stream is never opened); else the 431 goes out bare.
   */
  readonly headersTooLargeAnswer?: HeadersTooLargeAnswer;
  /** Peer bytes held by this connection and the others given the same budget, together (receive-budget.ts). */
  readonly receiveBudget?: ReceiveBudget;
}

export interface HeadersTooLargeAnswer {
  /** Regular fields, flat: `[name, value, ...]`, no :status. */
  readonly fields: readonly string[];
  readonly body: Buffer;
}

export interface RequestOptions {
  /** No request body: HEADERS carries END_STREAM. */
  readonly endStream?: boolean;
  /** Emit 'wantTrailers' at the end of the body and wait for sendTrailers(). */
  readonly waitForTrailers?: boolean;
}
