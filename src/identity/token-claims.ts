// Reads what a join token says without verifying it (only the CA can): its SPIFFE ID and expiry,
// so `meshcar check` and `meshcar doctor` can tell a user that the token file holds no token,
// an expired one, or one for another service, before the CA is asked. Its times (exp, and iat
// and nbf when present) must be JWT NumericDates a date can hold: whole seconds from 1970 to the
// end of 9999. exp 1e20 made doctor's `new Date(exp * 1000).toISOString()` throw (exit 70).

export interface UnverifiedTokenClaims {
  readonly sub: string;
  /** Expiry, ms since the epoch. */
  readonly expMs: number;
  readonly single: boolean;
}

/** The last second of 9999: ISO 8601's four-digit years, and X.509's GeneralizedTime. */
const MAX_NUMERIC_DATE = 253_402_300_799;

/** Why a token's time claim is not a NumericDate this code can show as a date, or undefined. */
function timeProblem(name: string, value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_NUMERIC_DATE) return undefined;
  const shown = typeof value === 'number' ? String(value) : value === undefined ? 'missing' : `a ${value === null ? 'null' : typeof value}`;
  return `its ${name} claim (${shown.slice(0, 40)}) is not a time: whole seconds since 1970 (JWT NumericDate), up to the year 9999`;
}

/** The claims of a compact JWS join token, or a sentence saying why the text is not one. */
export function readTokenClaims(text: string): UnverifiedTokenClaims | string {
  const token = text.trim();
  if (token === '') return 'the file is empty; write a join token into it (meshcar ca token --out FILE)';
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return 'it does not hold a join token (three base64url parts joined by dots, as meshcar ca token prints)';
  try {
    const header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as { alg?: unknown };
    const claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown; iat?: unknown; nbf?: unknown; single?: unknown };
    if (header.alg !== 'ES256' || typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return 'it is not a meshcar join token (no ES256 header, subject or expiry)';
    const time = timeProblem('exp', claims.exp, true) ?? timeProblem('iat', claims.iat, false) ?? timeProblem('nbf', claims.nbf, false);
    if (time !== undefined) return `it is not a meshcar join token: ${time}`;
    return { sub: claims.sub, expMs: claims.exp * 1000, single: claims.single === true };
  } catch {
    return 'it is not a meshcar join token (its parts are not JSON)';
  }
}
