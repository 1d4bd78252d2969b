// Node's own HTTP/1.1 parser (llhttp, compiled into Node), as node:http's client and server use
// it, for the inbound's client toward the app (src/inbound/app-connection.ts). Node does not
// document the binding, but exports it from `_http_common` for its own modules; it is the same
// parser node:http runs on every request, with its strictness (no lenient flags): conflicting
// Content-Length and Transfer-Encoding, bad chunk sizes, obsolete line folding and bare LF are
// errors, never guesses. Reaching it here saves what node:http builds around it per request
// (ClientRequest, IncomingMessage, the agent's bookkeeping) and what undici adds (its own llhttp
// in WebAssembly, ~15 MB of resident memory).
//
// The callbacks run inside execute() and finish(); see app-connection.ts for how they are used.

import { createRequire } from 'node:module';

/** One llhttp instance (one connection's worth of parser state). */
export interface Llhttp {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Bytes parsed, or an Error (with `code`, e.g. HPE_INVALID_CONSTANT) for a malformed message. */
  execute(data: Buffer): number | Error;
  /** The peer's end of input: completes a body delimited by the close, or an Error. */
  finish(): undefined | Error;
  /** Frees the native parser (never from inside one of its callbacks). */
  close(): void;
  [callback: number]: unknown;
}

interface LlhttpClass {
  new (): Llhttp;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpClass };

export const LlhttpParser: LlhttpClass = HTTPParser;

/** Called with the field lines of a head over 32 fields (in parts before headers-complete), or of trailers. */
export type OnHeaders = (fields: string[], url: string) => void;

/**
 * A response head is complete. `fields` is undefined when the parser handed them out through
 * OnHeaders already (a head of more than 32 fields). Return 1 to read no body (HEAD, 1xx).
 */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  fields: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number,
  statusText: string,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number;

/** A piece of body (a copy, not a view of the socket's read). */
export type OnBody = (chunk: Buffer) => void;
