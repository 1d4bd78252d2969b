// The header names the sidecar's HTTP/2 connections (meshcar codec, both roles) send as
// never-indexed literals (RFC 7541 §7.1.3): kept out of the HPACK dynamic table, and marked so
// no intermediary indexes them either.
//
// Why: an outbound session to an upstream is shared by every app request to it, so requests
// from different users share one compression context, and someone who controls part of a
// request and sees ciphertext lengths can confirm a guessed field (RFC 7541 §7.1): an indexed
// guess that matches costs one byte. HPACK only matches whole fields, so long random secrets
// resist guessing, but we cannot tell a long random token from a short or patterned one, so
// credentials are never indexed at all; it costs their bytes on every request, never a secret.
// The codec itself already never-indexes authorization, proxy-authorization, set-cookie and
// short cookies; here cookies of any length and the common token headers join them.

export const SENSITIVE_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  // API keys and bearer-like tokens sent outside authorization
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
  'x-refresh-token',
  'x-id-token',
  'x-amz-security-token',
  'x-goog-api-key',
  'x-vault-token',
  'private-token',
  // CSRF tokens: per-session secrets a page echoes back
  'x-csrf-token',
  'x-xsrf-token',
];
