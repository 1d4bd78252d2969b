// The issuance pipeline: who is asking (token or current SVID) → what they may have → does the
// CSR prove possession and ask for exactly that → sign under the SVID profile. Transport-free:
// the CA server and the offline `ca issue` command both call it.

import { clip } from '../clip.js';
import { MeshcarError } from '../errors.js';
import { parseAndVerifyCsr, CsrError, WeakKeyError } from '../pki/csr.js';
import { describePublicKey, type KeyDescription } from '../pki/keys.js';
import { isValidServiceName, serviceNameOf, tryParseSpiffeId } from '../identity/spiffe-id.js';
import { createJoinToken, verifyJoinToken, type JoinTokenClaims } from './join-tokens.js';
import { TokenLedger } from './token-ledger.js';
import type { TokenKeys } from './token-keys.js';
import { issueLeafCertificate } from './x509-profile.js';
import type { CaMaterial } from './store.js';
import { shellWord } from '../shell-word.js';

export interface AuthorityLimits {
  readonly maxTtlMs: number;
  readonly defaultTtlMs: number;
}

export interface IssuedSvid {
  readonly spiffeId: string;
  readonly certificate: string;
  readonly chain: string;
  readonly bundle: string;
  readonly notAfter: string;
  readonly serial: string;
}

/** Requester-chosen text in a refusal (the answer and the audit line) is cut to this many characters (saying how long it was). */
export const QUOTED_VALUE_LIMIT = 256;

/** "2 DNS, 1 IP": counts, never the names. */
function countByKind(kinds: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const kind of kinds) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return [...counts].map(([kind, count]) => `${count} ${kind}`).join(', ');
}

/** What a caller has proven it may obtain. */
export type Grant =
  | { readonly via: 'token'; readonly spiffeId: string; readonly claims: JoinTokenClaims }
  | { readonly via: 'svid'; readonly spiffeId: string };

/**
 * An issuer starting further ahead than this was made under a clock that ran ahead (a host
 * months ahead rotated it). Within it, this CA's clock may be the one behind (CA servers on one
 * folder whose clocks disagree by hours): its leaves still verify on hosts whose clocks are
 * right, so it signs on.
 */
export const ISSUER_FUTURE_TOLERANCE_MS = 86_400_000;

export class Authority {
  private readonly issuerNotAfter: Date;
  /** Epoch ms the signing issuer and the active root start (read once: looked at per signing and per request). */
  readonly issuerStartsMs: number;
  private readonly rootStartsMs: number;
  /** What follows a leaf in its chain: the issuer, and the cross certificate while a new root is active. */
  private readonly chainTail: string;

  constructor(readonly material: CaMaterial, private readonly ledger: TokenLedger, readonly limits: AuthorityLimits, readonly tokenKeys: TokenKeys) {
    this.issuerNotAfter = new Date(material.issuerCert.validTo);
    this.issuerStartsMs = Date.parse(material.issuerCert.validFrom);
    const active = material.rootsByRole.find((r) => r.role === 'active');
    this.rootStartsMs = active === undefined ? 0 : Date.parse(active.cert.validFrom);
    this.chainTail = material.issuerPem + material.crossPem;
  }

  get trustDomain(): string {
    return this.material.trustDomain;
  }

  createToken(spiffeId: string, ttlMs: number, singleUse: boolean): string {
    return createJoinToken(this.tokenKeys.signer, spiffeId, ttlMs, singleUse);
  }

  async grantFromToken(token: string): Promise<Grant> {
    const claims = await verifyJoinToken(token, this.tokenKeys.keyFor);
    this.requireOwnTrustDomain(claims.sub);
    return { via: 'token', spiffeId: claims.sub, claims };
  }

  /**
   * The caller's TLS handshake has already verified its chain against our bundle. A renewal is
   * for a workload ID this CA issues (spiffe://TD/svc/NAME), as a token's is: a certificate of
   * another shape chaining to our roots (spiffe://TD alone, an operator's own path under the
   * same root) was renewed as what it named, an ID no sidecar accepts and this CA never issues.
   */
  grantFromSvid(spiffeId: string): Grant {
    this.requireOwnTrustDomain(spiffeId);
    const parsed = tryParseSpiffeId(spiffeId);
    const service = typeof parsed === 'string' ? undefined : serviceNameOf(parsed);
    if (service === undefined || !isValidServiceName(service)) {
      throw new MeshcarError('identity_not_allowed', `${spiffeId} is no workload ID this CA issues (spiffe://${this.trustDomain}/svc/NAME); request one with a join token`);
    }
    return { via: 'svid', spiffeId };
  }

  private requireOwnTrustDomain(spiffeId: string): void {
    const parsed = tryParseSpiffeId(spiffeId);
    if (typeof parsed === 'string' || parsed.trustDomain !== this.trustDomain) {
      throw new MeshcarError('identity_not_allowed', `${spiffeId} is not an identity of trust domain ${this.trustDomain}`);
    }
  }

  /** Checks the CSR against the grant, spends single-use tokens, and signs. */
  async sign(grant: Grant, csrPem: string, requestedTtlMs?: number, requester?: AbortSignal): Promise<IssuedSvid> {
    let csr;
    try {
      csr = await parseAndVerifyCsr(csrPem);
    } catch (err) {
      if (err instanceof CsrError) throw new MeshcarError('bad_csr', err.message, { cause: err.cause });
      if (err instanceof WeakKeyError) throw new MeshcarError('weak_key', err.message);
      throw err;
    }
    if (csr.otherNames.length > 0) throw new MeshcarError('identity_not_allowed', `the CSR asks for names besides the SPIFFE ID (${countByKind(csr.otherNames)}); ask for exactly ${grant.spiffeId}`);
    if (csr.uris.length !== 1) throw new MeshcarError('identity_not_allowed', `the CSR asks for ${csr.uris.length} URI names; an SVID has exactly one (${grant.spiffeId})`);
    const asked = csr.uris[0] as string;
    if (asked !== grant.spiffeId) {
      throw new MeshcarError('identity_not_allowed', `the CSR asks for ${JSON.stringify(clip(asked, QUOTED_VALUE_LIMIT))} but the ${grant.via === 'token' ? 'join token' : 'SVID'} grants ${grant.spiffeId}`);
    }
    // before a single-use token is spent: an expired issuer would fail the signing after it,
    // and the token would be gone with no certificate to show for it
    this.refuseWithExpiredIssuer();
    if (grant.via === 'token' && grant.claims.single) await this.ledger.redeem(grant.claims.jti, grant.claims.exp, Date.now(), requester);
    return this.issue(grant.spiffeId, csr.spki, requestedTtlMs, undefined, describePublicKey(csr.publicKey).type);
  }

  /** Signs a leaf for a public key whose possession is already established, for at most maxTtl. */
  async issue(spiffeId: string, spki: Buffer, requestedTtlMs?: number, serverNames?: readonly string[], keyType?: KeyDescription['type']): Promise<IssuedSvid> {
    return this.signLeaf(spiffeId, spki, Math.min(requestedTtlMs ?? this.limits.defaultTtlMs, this.limits.maxTtlMs), serverNames, keyType);
  }

  /**
   * The CA server's own certificate, for `lifetimeMs`: maxTtl bounds what requesters are
   * granted, not this one, which the server renews itself at half its life (a maxTtl of 1s
   * made it serve a certificate that expired before any sidecar could connect).
   */
  async issueServerCertificate(spiffeId: string, spki: Buffer, lifetimeMs: number, serverNames: readonly string[]): Promise<IssuedSvid> {
    return this.signLeaf(spiffeId, spki, lifetimeMs, serverNames, undefined);
  }

  /** A leaf is capped at its issuer's notAfter: past it, every leaf would be born expired. */
  private refuseWithExpiredIssuer(): void {
    // made under a clock that ran ahead (a rotation on a host whose clock was months ahead):
    // every leaf under it would chain to a certificate not valid yet, silently (a review)
    const rootStart = this.rootStartsMs;
    if (rootStart > Date.now() + ISSUER_FUTURE_TOLERANCE_MS) {
      // no issuer rotation mends this one: every chain ends in a root not valid yet
      throw new MeshcarError('ca_missing', `the CA's root starts at ${new Date(rootStart).toISOString()}, after now: the folder was made under a clock that ran ahead; with the clock right, rotate the root ("meshcar ca root add", "activate", "retire" with --force) or make the CA anew ("meshcar ca init --force")`);
    }
    const notBefore = this.issuerStartsMs;
    if (notBefore > Date.now() + ISSUER_FUTURE_TOLERANCE_MS) {
      throw new MeshcarError('ca_missing', `the CA's issuer starts at ${new Date(notBefore).toISOString()}, after now: it was made under a clock that ran ahead; run "meshcar ca rotate-issuer --dir ${shellWord(this.material.dir)}" with the clock right (or set issuerRotation in the CA config, which does it at start)`);
    }
    if (this.issuerNotAfter.getTime() <= Date.now()) {
      throw new MeshcarError('ca_missing', `the CA's issuer expired at ${this.issuerNotAfter.toISOString()}: run "meshcar ca rotate-issuer --dir ${shellWord(this.material.dir)}" (or set issuerRotation in the CA config)`);
    }
  }

  private async signLeaf(spiffeId: string, spki: Buffer, lifetimeMs: number, serverNames: readonly string[] | undefined, keyType: KeyDescription['type'] | undefined): Promise<IssuedSvid> {
    this.refuseWithExpiredIssuer();
    const built = await issueLeafCertificate(this.material.issuer, this.issuerNotAfter, {
      spiffeId,
      subjectPublicKeySpki: spki,
      lifetimeMs,
      ...(keyType ? { subjectKeyType: keyType } : {}),
      ...(serverNames ? { serverNames, commonName: serverNames[0] } : {}),
    });
    return {
      spiffeId,
      certificate: built.pem,
      chain: built.pem + this.chainTail,
      bundle: this.material.bundlePem,
      notAfter: built.notAfter.toISOString(),
      serial: built.serialHex,
    };
  }
}
