// The app's answer head or trailers over what goes to the HTTP/2 caller: its
// SETTINGS_MAX_HEADER_LIST_SIZE (64 KiB from every outbound, whatever its codec), a head's 256
// fields (what a calling sidecar's client takes) and, on
// `http2.codec: node`, the 64 KiB nghttp2 sends in one block (it reads the caller's limit as
// advice only). Sent anyway, the caller refuses it (Node's client, an outbound on `node` before it
// advertised its limit, stalled the whole session); the meshcar codec resets the stream instead,
// and a head or trailers over nghttp2's bound stalled the caller's session. The caller then got
// no status while this side recorded the app's 200. So the head is measured first and answered
// with the sidecar's own 502 bad_gateway naming both sizes (http2-exchange.ts throws,
// exchange.ts answers); trailers come after a head that went out, so their stream can only be
// reset: recorded as `trailers_too_large`, not as the app's clean end. Either way one warn line
// per caller and kind per 10 s says why.

import type { Logger } from 'pino';
import { DEFAULT_LIMITS, H2Stream } from '../h2/index.js';
import type { OutgoingHttpHeaders } from 'node:http2';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import { headFields, headObjectBytes } from '../http/head-list-bytes.js';
import { loggedPath } from '../metrics/access-log.js';

/**
 * The longest answer head an HTTP/1.1 app may send (its status line and fields, in bytes as
 * sent): what an h2c app's answer may carry and every calling outbound takes (64 KiB), Envoy's
 * default for response heads (60 KiB) about the same. Node's HTTP/1.1 parsers and undici stop at
 * 16 KiB by default: a 30 KB head (large cookies, a long Content-Security-Policy) was 502
 * bad_gateway (HPE_HEADER_OVERFLOW), held against the endpoint by its callers.
 */
export const APP_ANSWER_HEAD_BYTES = 64 * 1024;

/** The reason recorded (access log `error`, meshcar_request_errors_total{reason}) for trailers that were not sent. */
export const TRAILERS_TOO_LARGE = 'trailers_too_large';

const LINES = new LogPerKey();

/** What of a codec error over the caller's limit is said: its sizes (HeaderListTooLargeError). */
interface OverLimit {
  readonly size: number;
  readonly limit: number;
  /** Node's own limit on what it sends, lower than the caller's. */
  readonly nodeSendLimit?: boolean;
}

function limitText(over: OverLimit): string {
  return over.nodeSendLimit ? `the ${over.limit} bytes Node's HTTP/2 codec sends in one block (http2.codec: node)` : `the caller's limit of ${over.limit} (the caller's SETTINGS_MAX_HEADER_LIST_SIZE)`;
}

/**
 * nghttp2 (Node's codec) sends no header block whose bound (name + value + 12 per field) is over
 * its maxSendHeaderBlockLength, 64 KiB: the stream errs instead, and the caller's session was
 * seen to stall with it. Measured in RFC 7541 sizes (32 per field), a head within this fits both.
 */
const NODE_SEND_BLOCK_LIMIT = 64 * 1024;

/**
 * The fields an answer head may carry, `:status` included: what a calling sidecar's client
 * takes (src/h2's maxHeaderFields, Node's maxHeaderListPairs as the outbound sets it), as the
 * inbound takes in a request head. Over it, the caller got a 502 of its own while this side
 * recorded the app's 200.
 */
const CALLER_MAX_FIELDS = DEFAULT_LIMITS.maxHeaderFields;

/** Why the app's answer head cannot go to the caller (over its limit), or undefined if it can. */
export function answerHeadOverCaller(stream: unknown, headers: OutgoingHttpHeaders | string[]): string | undefined {
  // Node's respond() adds a `date` to a head without one (an app that sends none, as gRPC
  // servers often do): counted here, it is a field the caller gets
  const nodeDate = !(stream instanceof H2Stream) && !Array.isArray(headers) && headers.date === undefined ? 1 : 0;
  const fields = headFields(headers as Parameters<typeof headFields>[0]) + nodeDate;
  if (fields > CALLER_MAX_FIELDS) return `its head of ${fields} fields is over the ${CALLER_MAX_FIELDS} a calling sidecar takes`;
  const over = stream instanceof H2Stream ? stream.headOverPeerLimit(headers as Parameters<H2Stream['headOverPeerLimit']>[0]) : nodeHeadOver(stream as NodeStream, headers as OutgoingHttpHeaders, nodeDate * DATE_FIELD_BYTES);
  return over === undefined ? undefined : `its head of ${over.size} bytes is over ${limitText(over)}`;
}

type NodeStream = { readonly session?: { readonly remoteSettings?: { readonly maxHeaderListSize?: number } } };

/** The RFC 7541 size of the `date` Node's respond() adds: name, an IMF-fixdate of 29 characters, 32. */
const DATE_FIELD_BYTES = 'date'.length + 29 + 32;

/** Node's codec: the head (and `added` bytes Node adds as it sends it) against the caller's advertised limit and nghttp2's own. */
function nodeHeadOver(stream: NodeStream, headers: OutgoingHttpHeaders, added = 0): OverLimit | undefined {
  let callerLimit = Infinity;
  try {
    callerLimit = stream.session?.remoteSettings?.maxHeaderListSize ?? Infinity;
  } catch {
    // the session is gone: the answer goes nowhere anyway, respond() says so
  }
  const size = headObjectBytes(headers as Parameters<typeof headObjectBytes>[0]) + added;
  if (size <= Math.min(callerLimit, NODE_SEND_BLOCK_LIMIT)) return undefined;
  return callerLimit <= NODE_SEND_BLOCK_LIMIT ? { size, limit: callerLimit } : { size, limit: NODE_SEND_BLOCK_LIMIT, nodeSendLimit: true };
}

/** Node's codec, before sendTrailers(): trailers it would not send (the session stalled with them). The meshcar codec measures its own (trailersRefused). */
export function nodeTrailersOver(stream: unknown, trailers: OutgoingHttpHeaders): OverLimit | undefined {
  return stream instanceof H2Stream ? undefined : nodeHeadOver(stream as NodeStream, trailers);
}

/** The trailers the codec just refused to send (the stream is reset): their sizes, or undefined if that is not why the stream ended. */
export function trailersRefused(stream: { readonly errored?: unknown }): OverLimit | undefined {
  const err = stream.errored as (Partial<OverLimit> & { code?: unknown }) | null | undefined;
  if (err?.code !== 'ERR_H2_HEADER_LIST_TOO_LARGE' || err.size === undefined || err.limit === undefined) return undefined;
  return { size: err.size, limit: err.limit };
}

/** One warn line per caller and kind per 10 s: what was not sent to whom, and why. */
export function warnOverCaller(logger: Logger, kind: 'head' | 'trailers', peer: string, path: string, why: string): void {
  const through = LINES.take(`${kind} ${peer}`);
  if (!through) return;
  const outcome = kind === 'head' ? 'answered 502 bad_gateway instead' : 'the stream was reset after the head (INTERNAL_ERROR)';
  logger.warn({ peer, path: loggedPath(path), ...leftOutFields(through) }, `the app's answer cannot be forwarded: ${why}; ${outcome}${leftOut(through, 'from this caller')}`);
}

/** The message for trailers over the caller's limit. */
export function trailersMessage(over: OverLimit): string {
  return `its trailers of ${over.size} bytes are over ${limitText(over)}`;
}
