// The app's answer head or trailers over what the HTTP/2 caller takes (its
// SETTINGS_MAX_HEADER_LIST_SIZE: 64 KiB from every outbound, whatever its codec), on the meshcar
// codec (Node's nghttp2 reads the caller's limit as advice, and holds what it sends to 64 KiB
// compressed itself). Sent anyway, the caller refuses it (Node's client, as an outbound on
// `http2.codec: node` did before it advertised its limit, stalled the whole session); the codec
// resets the stream instead, and the caller then got no status while this side recorded the
// app's 200. So the head is measured first and answered with the sidecar's own 502 bad_gateway
// naming both sizes (http2-exchange.ts throws, exchange.ts answers); trailers come after a head
// that went out, so their stream can only be reset: recorded as `trailers_too_large`, not as
// the app's clean end. Either way one warn line per caller and kind per 10 s says why.

import type { Logger } from 'pino';
import { H2Stream } from '../h2/index.js';
import type { OutgoingHttpHeaders } from 'node:http2';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';

/** The reason recorded (access log `error`, meshcar_request_errors_total{reason}) for trailers that were not sent. */
export const TRAILERS_TOO_LARGE = 'trailers_too_large';

const LINES = new LogPerKey();

/** What of a codec error over the caller's limit is said: its sizes (HeaderListTooLargeError). */
interface OverLimit {
  readonly size: number;
  readonly limit: number;
}

/** Why the app's answer head cannot go to the caller (over its limit), or undefined if it can (or the codec measures nothing: Node's). */
export function answerHeadOverCaller(stream: unknown, headers: OutgoingHttpHeaders | string[]): string | undefined {
  if (!(stream instanceof H2Stream)) return undefined;
  const over = stream.headOverPeerLimit(headers as Parameters<H2Stream['headOverPeerLimit']>[0]);
  return over === undefined ? undefined : `its head of ${over.size} bytes is over the caller's limit of ${over.limit} (the caller's SETTINGS_MAX_HEADER_LIST_SIZE)`;
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
  logger.warn({ peer, path, ...leftOutFields(through) }, `the app's answer cannot be forwarded: ${why}; ${outcome}${leftOut(through, 'from this caller')}`);
}

/** The message for trailers over the caller's limit. */
export function trailersMessage(over: OverLimit): string {
  return `its trailers of ${over.size} bytes are over the caller's limit of ${over.limit} (the caller's SETTINGS_MAX_HEADER_LIST_SIZE)`;
}
