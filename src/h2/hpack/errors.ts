// The one error the HPACK codec throws on purpose. Its code tells the connection what to do:
// COMPRESSION_ERROR is a connection error (RFC 9113 §4.3: the shared table can no longer be
// trusted), HEADER_LIST_TOO_LARGE is a stream-level refusal (431 or RST_STREAM) because the
// decoder finished the block and its dynamic table is still in step with the peer's encoder.

export type HpackErrorCode = 'COMPRESSION_ERROR' | 'HEADER_LIST_TOO_LARGE';

export class HpackError extends Error {
  readonly code: HpackErrorCode;

  constructor(code: HpackErrorCode, message: string) {
    super(message);
    this.name = 'HpackError';
    this.code = code;
  }
}

/** Shorthand for the connection-fatal case; `never` lets callers write `throw`-free branches. */
export function compressionError(message: string): never {
  throw new HpackError('COMPRESSION_ERROR', message);
}
