// What went wrong with the local app, in the sidecar's error codes: could not reach it at
// all (503, retrying elsewhere makes sense), it hung up or reset before answering (502), or
// it answered with something that is not HTTP (502 bad_gateway). The message goes to the
// remote caller, another service: it says what happened, never where the app listens (its
// address is this sidecar's config, `app`, which `meshcar doctor` checks).

import type { ErrorCode } from '../errors.js';

/** Failures to open a connection: the app is not there (not started, crashed, wrong port). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'EACCES', 'UND_ERR_CONNECT_TIMEOUT']);

export interface AppFailure {
  readonly code: ErrorCode;
  readonly message: string;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function classifyAppError(err: unknown): AppFailure {
  // an HTTP/2 stream pending on a session that failed to connect is cancelled "caused by" the
  // connect error: the cause says what happened
  const code = codeOf((err as { cause?: unknown } | null)?.cause) ?? codeOf(err);
  const text = code ?? (err instanceof Error ? err.message : String(err));
  // undici's parser errors do not always carry an HPE_ code (an invalid header token has none)
  if (err instanceof Error && err.name === 'HTTPParserError') return { code: 'bad_gateway', message: `the app sent a malformed response (${code ?? err.message})` };
  if (code !== undefined) {
    if (UNREACHABLE.has(code)) return { code: 'upstream_unavailable', message: `the app is unreachable (${code})` };
    if (code.startsWith('HPE_')) return { code: 'bad_gateway', message: `the app sent a malformed response (${code})` };
  }
  return { code: 'upstream_reset', message: `the app closed the connection before answering (${text})` };
}
