// Join tokens: compact JWS (ES256) signed by the CA's token key (not the issuer's: tokens outlive
// issuer and root rotations), naming exactly one SPIFFE ID, with an expiry and an optional
// single-use flag. The header names the key (kid), so tokens of a previous key still verify
// after a rotation. Stateless to check; single use is enforced by the token ledger.

import { randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { MeshcarError } from '../errors.js';
import { tryParseSpiffeId } from '../identity/spiffe-id.js';

export interface JoinTokenClaims {
  /** The SPIFFE ID the token lets its holder obtain. */
  readonly sub: string;
  readonly iat: number;
  readonly exp: number;
  /** Unique token ID, recorded by the ledger when the token is single-use. */
  readonly jti: string;
  readonly single: boolean;
}

const TYP = 'meshcar-join+jwt';

/** A key that signs tokens, and its id as the token header names it. */
export interface TokenSigningKey {
  readonly kid: string;
  readonly key: KeyObject;
}

/** Finds the public key for a kid, or throws bad_token saying why there is none. */
export type TokenKeyLookup = (kid: string) => KeyObject;

export function createJoinToken(signer: TokenSigningKey, spiffeId: string, ttlMs: number, singleUse: boolean, now = Date.now()): string {
  const claims: JoinTokenClaims = {
    sub: spiffeId,
    iat: Math.floor(now / 1000),
    exp: Math.floor((now + ttlMs) / 1000),
    jti: randomBytes(16).toString('base64url'),
    single: singleUse,
  };
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: TYP, kid: signer.kid })).toString('base64url');
  const signingInput = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

function verifySignature(signingInput: string, signature: Buffer, publicKey: KeyObject): Promise<boolean> {
  return new Promise((resolve) => {
    verify('sha256', Buffer.from(signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature, (err, ok) => resolve(!err && ok));
  });
}

function isClaims(value: unknown): value is JoinTokenClaims {
  const c = value as Record<string, unknown>;
  return typeof c === 'object' && c !== null && typeof c.sub === 'string' && Number.isInteger(c.exp) && Number.isInteger(c.iat) && typeof c.jti === 'string' && typeof c.single === 'boolean';
}

/**
 * A token part's bytes, only if it is canonical base64url (RFC 7515 2: no padding, only the URL
 * alphabet, unused trailing bits zero). Node's decoder skips what it does not know, so `sig==`
 * or a flipped last bit would decode to the same bytes: one token would have many spellings.
 */
function canonicalBase64url(part: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  const bytes = Buffer.from(part, 'base64url');
  return bytes.toString('base64url') === part ? bytes : undefined;
}

function headerKid(encoded: string): string | undefined {
  const bytes = canonicalBase64url(encoded);
  if (bytes === undefined) return undefined;
  try {
    const header = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    return header.alg === 'ES256' && header.typ === TYP && typeof header.kid === 'string' ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

/** Checks encoding, signature, shape and expiry; the caller checks the ledger for single-use tokens. */
export async function verifyJoinToken(token: string, keyFor: TokenKeyLookup, now = Date.now()): Promise<JoinTokenClaims> {
  const parts = token.split('.');
  const kid = parts.length === 3 ? headerKid(parts[0] as string) : undefined;
  const payload = parts.length === 3 ? canonicalBase64url(parts[1] as string) : undefined;
  const signature = parts.length === 3 ? canonicalBase64url(parts[2] as string) : undefined;
  if (kid === undefined || payload === undefined || signature === undefined) throw new MeshcarError('bad_token', 'the join token is not a meshcar join token (three canonical base64url parts)');
  const signingInput = `${parts[0]}.${parts[1]}`;
  const ok = await verifySignature(signingInput, signature, keyFor(kid));
  if (!ok) throw new MeshcarError('bad_token', 'the join token was not signed by this CA');
  let claims: unknown;
  try {
    claims = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new MeshcarError('bad_token', 'the join token payload is not JSON');
  }
  if (!isClaims(claims) || typeof tryParseSpiffeId(claims.sub) === 'string') throw new MeshcarError('bad_token', 'the join token claims are malformed');
  if (claims.exp * 1000 <= now) throw new MeshcarError('token_expired', `the join token expired at ${new Date(claims.exp * 1000).toISOString()}; ask for a new one`);
  return claims;
}
