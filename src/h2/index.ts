// meshcar's own HTTP/2 (RFC 9113): the public surface. One H2Connection per socket, either
// role; H2Stream per request. See connection.ts for the events and stream.ts for the stream API.

export { H2Connection, SessionClosingError, type H2ConnectionOptions, type H2Observer, type RequestOptions } from './connection.js';
export type { HeadersTooLargeAnswer } from './connection-options.js';
export { H2Stream, type RespondOptions } from './stream.js';
export { ErrorCode, errorCodeName, type Settings } from './constants.js';
export { H2ConnectionError, H2StreamError, HeaderListTooLargeError, type ConnectionCloseReason, type StreamErrorReason } from './errors.js';
export { CONTENT_LENGTH_MAX_DIGITS, SINGLE_VALUED, type IncomingHeaders, type OutgoingHeaders } from './headers.js';
export { InvalidHeaderError } from './headers-outgoing.js';
export { DEFAULT_LIMITS, type H2Limits } from './limits.js';
export { ReceiveBudget } from './receive-budget.js';
