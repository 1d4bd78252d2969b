// What went wrong with the local app, in the sidecar's error codes: could not reach it at
// all, or this sidecar ran short of descriptors, ports or buffers to reach it with (503, retrying
// elsewhere makes sense), it hung up or reset before answering (502), or it answered with
// something that is not HTTP or that it may not send (502 bad_gateway). The message goes to the
// remote caller, another service: it says what happened, and for an app that cannot be reached
// which address the sidecar tried when that is a loopback one (the app beside its sidecar, which
// no caller reaches but through it): a 503 that said only "the app is unreachable" did not say
// whose app, nor which port the sidecar's `app` setting names. An app on another host's address
// is not named: a caller could try it around this sidecar's authorization.

import type { ErrorCode } from '../errors.js';
import { formatHostPort, isLoopbackAddress, type HostPort } from '../config/address.js';
import { APP_CLIENT_ERRORS } from './app-dispatch.js';
import { isIPv4 } from 'node:net';
import { localShortage } from '../local-shortage.js';
import { APP_SILENT_SESSION } from './h2c-first-settings.js';

/** Failures to open a connection: the app is not there (not started, crashed, wrong port). */
// EADDRNOTAVAIL included: toward an IPv6 app it is most often an address this host cannot reach
// from (a host without IPv6), so it is read as unreachable before the shortages below; toward
// an IPv4 one it can only be a shortage of local ports (shortOfPorts)
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'EACCES', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * The clients' errors for an answer they read and refused, which are the app's fault, not a
 * broken connection: undici's for a body longer or shorter than its Content-Length (or
 * `Content-Length: 2, 2`) and a status it cannot take (`000` trips an assertion of its
 * parser); the own client's (app-dispatch.ts) for a switch (101) nobody asked for. (llhttp's
 * own, HPE_ codes, are read below.)
 */
const REFUSED_ANSWER: Readonly<Record<string, string>> = {
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'a response whose Content-Length is malformed, repeated or not its body length',
  // undici's own limit on an answer head (16 KiB), not a connection the app closed
  UND_ERR_HEADERS_OVERFLOW: 'a response head over the size limit',
  ERR_ASSERTION: 'a response that cannot be read',
  [APP_CLIENT_ERRORS.unaskedUpgrade]: 'a protocol switch (101) nobody asked for',
  [APP_CLIENT_ERRORS.tooManyInterim]: 'interim (1xx) answers without end',
};

/** The own client's refused interim answers: the app answered, nothing broke (no retry). */
const OWN_REFUSED_INTERIM = new Set<string>([APP_CLIENT_ERRORS.unaskedUpgrade, APP_CLIENT_ERRORS.tooManyInterim]);

/** undici's UND_ERR_SOCKET messages for an interim answer it refuses (it drops the connection). */
const REFUSED_INTERIM: Readonly<Record<string, string>> = {
  // a 100 Continue to a request without Expect: 100-continue (the own client skips it)
  'bad response': 'an interim response nobody asked for (100 Continue without Expect)',
  // a 101 to a request that asked for no upgrade
  'bad upgrade': 'a protocol switch (101) nobody asked for',
};

/** An interim answer a client refused (undici: an UND_ERR_SOCKET): the app answered, nothing broke (no retry). */
export function isRefusedInterim(err: unknown): boolean {
  const code = codeOf(err);
  if (code !== undefined && OWN_REFUSED_INTERIM.has(code)) return true;
  return code === 'UND_ERR_SOCKET' && err instanceof Error && Object.hasOwn(REFUSED_INTERIM, err.message);
}

export interface AppFailure {
  readonly code: ErrorCode;
  readonly message: string;
  /** The connect error's code when this sidecar ran short (EMFILE...), not the app: logged (app-failure.ts). */
  readonly local?: string;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The app's address as a caller may be told it (see the header): a loopback one; undefined for any other. */
export function appAddressForCallers(address: HostPort): string | undefined {
  return isLoopbackAddress(address.host) || address.host === 'localhost' ? formatHostPort(address) : undefined;
}

/** What the own client had read on the connection before llhttp refused its bytes (app-connection.ts). */
const kReadBefore = Symbol('meshcar.readBefore');
type ReadBefore = 'interim' | 'final';

/** Marks llhttp's refusal `err` as one that came after the app's `head` on the same connection: it speaks HTTP/1.1. */
export function refusedAfterHead(err: Error, head: ReadBefore): Error {
  return Object.assign(err, { [kReadBefore]: head });
}

/**
 * llhttp's refusal of the app's answer (its code, or undici's message). HPE_INVALID_CONSTANT is the first bytes not reading
 * `HTTP/1.x`: no HTTP/1.1 server at all, most often an h2c (or TLS) server behind an `http://`
 * app, which a bare code did not tell. Not when the connection already carried an HTTP/1.1
 * head (the own client says so): after an interim answer, most often content it may not have.
 */
function malformed(code: string, err: unknown): string {
  // undici's parser error carries no code for it, only llhttp's reason: "Expected HTTP/, RTSP/ or ICE/"
  const notHttp1 = code === 'HPE_INVALID_CONSTANT' || /\(Expected HTTP\//.test(code);
  const before = (err as { [kReadBefore]?: ReadBefore } | null)?.[kReadBefore];
  const hint = !notHttp1 ? '' : before === 'interim' ? ': bytes after an interim (1xx) answer that begin no answer (a 1xx has no content)' : before === 'final' ? '' : ': what it sent is not HTTP/1.1 (an HTTP/2 (h2c) or TLS server behind an http:// inbound.app? meshcar doctor names what it speaks)';
  return `the app sent a malformed response (${code})${hint}`;
}

/** EADDRNOTAVAIL on a connection to an IPv4 address: no local port left (an IPv4 address is always reachable from here). */
function shortOfPorts(err: unknown, code: string): boolean {
  if (code !== 'EADDRNOTAVAIL') return false;
  const address = (err as { address?: unknown } | null)?.address ?? (err as { cause?: { address?: unknown } } | null)?.cause?.address;
  return typeof address === 'string' && isIPv4(address);
}

/** `appAddress`: appAddressForCallers of the app tried, named when it cannot be reached. */
export function classifyAppError(err: unknown, appAddress?: string): AppFailure {
  // an HTTP/2 stream pending on a session that failed to connect is cancelled "caused by" the
  // connect error: the cause says what happened
  const code = codeOf((err as { cause?: unknown } | null)?.cause) ?? codeOf(err);
  const text = code ?? (err instanceof Error ? err.message : String(err));
  // undici's parser errors do not always carry an HPE_ code (an invalid header token has none)
  if (err instanceof Error && err.name === 'HTTPParserError') return { code: 'bad_gateway', message: malformed(code ?? err.message, err) };
  if (code !== undefined) {
    // only at shutdown or a restart of the pool: the app did nothing wrong
    if (code === APP_CLIENT_ERRORS.poolClosed) return { code: 'upstream_unavailable', message: 'the sidecar is closing its connections to the app' };
    // h2c: connected, but no SETTINGS in time (h2c-first-settings.ts): hung, or not HTTP/2
    if (code === APP_SILENT_SESSION) {
      // its message has no subject: "accepted the connection but did not speak HTTP/2 (...)"
      const silent = codeOf((err as { cause?: unknown }).cause) === code ? (err as { cause: Error }).cause : (err as Error);
      return { code: 'upstream_unavailable', message: `${appAddress === undefined ? 'the app' : `the app at ${appAddress}`} ${silent.message}` };
    }
    if (UNREACHABLE.has(code) && !shortOfPorts(err, code)) return { code: 'upstream_unavailable', message: appAddress === undefined ? `the app is unreachable (${code}; an address off loopback is not told to callers: see this sidecar's app setting)` : `the app is unreachable at ${appAddress} (${code})` };
    // this sidecar ran short of descriptors, ports or buffers: the app did nothing, and a 503 is retried
    // elsewhere by the caller's outbound, where a 502 "the app closed the connection" was not
    const shortage = localShortage(code);
    if (shortage !== undefined) return { code: 'upstream_unavailable', message: `could not connect to ${appAddress === undefined ? 'the app' : `the app at ${appAddress}`}: ${shortage} (${code}); the app is not at fault`, local: code };
    if (code.startsWith('HPE_')) return { code: 'bad_gateway', message: malformed(code, err) };
    const refused = Object.hasOwn(REFUSED_ANSWER, code) ? REFUSED_ANSWER[code] : code === 'UND_ERR_SOCKET' && err instanceof Error && Object.hasOwn(REFUSED_INTERIM, err.message) ? REFUSED_INTERIM[err.message] : undefined;
    if (refused !== undefined) return { code: 'bad_gateway', message: `the app sent ${refused} (${code})` };
    // h2c: Node's client names what broke. Its session error is nghttp2's refusal of the app's
    // bytes (more than 8 CONTINUATIONs, a frame nghttp2 cannot take), not a connection the app
    // closed; a stream error is a reset, the app's or the client's own of an answer HTTP/2
    // forbids (nghttp2 resets a field name in capitals or a head without :status PROTOCOL_ERROR).
    // Still upstream_reset (gRPC UNAVAILABLE): the session's other requests, cut with it, did
    // nothing wrong, and a client may send them again
    const detail = err instanceof Error ? err.message : text;
    if (code === 'ERR_HTTP2_ERROR') return { code: 'upstream_reset', message: `the app's connection was closed before an answer: the app broke the HTTP/2 protocol on it (${detail})` };
    if (code === 'ERR_HTTP2_STREAM_ERROR') {
      const forbidden = /PROTOCOL_ERROR/.test(detail) ? ', by the app or for an answer HTTP/2 does not allow (a field name in capitals, no :status)' : '';
      return { code: 'upstream_reset', message: `the app's stream was reset before an answer (${detail})${forbidden}` };
    }
  }
  return { code: 'upstream_reset', message: `the app closed the connection before answering (${text})` };
}
