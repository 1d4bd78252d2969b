// Reads what a join token says without verifying it (only the CA can): its SPIFFE ID and expiry,
// so `meshcar check` and `meshcar doctor` can tell a user that the token file holds no token,
// an expired one, or one for another service, before the CA is asked.

export interface UnverifiedTokenClaims {
  readonly sub: string;
  /** Expiry, ms since the epoch. */
  readonly expMs: number;
  readonly single: boolean;
}

/** The claims of a compact JWS join token, or a sentence saying why the text is not one. */
export function readTokenClaims(text: string): UnverifiedTokenClaims | string {
  const token = text.trim();
  if (token === '') return 'the file is empty; write a join token into it (meshcar ca token --out FILE)';
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return 'it does not hold a join token (three base64url parts joined by dots, as meshcar ca token prints)';
  try {
    const header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as { alg?: unknown };
    const claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown; single?: unknown };
    if (header.alg !== 'ES256' || typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return 'it is not a meshcar join token (no ES256 header, subject or expiry)';
    return { sub: claims.sub, expMs: claims.exp * 1000, single: claims.single === true };
  } catch {
    return 'it is not a meshcar join token (its parts are not JSON)';
  }
}
