// The authenticated caller of one connection: its SPIFFE ID, its metrics label, the
// x-forwarded-client-cert value the app receives, and its grant under the current policy.
// Everything here is computed once per peer certificate (not per request): a peer sidecar
// opens few connections and sends many requests on each.

import type { X509Certificate } from 'node:crypto';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { peerLabel } from '../metrics/peer-label.js';
import type { KeyedTokenBuckets, TokenBucket } from '../http/token-bucket.js';
import type { AuthorizationPolicy, Grant } from './authorization.js';

export class Caller {
  /** The `peer` label: the service name of a /svc/ ID, else the whole SPIFFE ID; a long one clipped (peer-label.ts). */
  readonly peer: string;
  /** Envoy's format, so apps written for Envoy read it unchanged. */
  readonly xfcc: string;
  private policy: AuthorizationPolicy | undefined;
  private grant: Grant | undefined;
  private buckets: KeyedTokenBuckets | undefined;
  private bucket: TokenBucket | undefined;

  constructor(readonly id: SpiffeId, certificate: X509Certificate, ownSpiffeId: string) {
    this.peer = peerLabel(id);
    // fingerprint256 is the SHA-256 of the DER, as "AB:CD:..."; Envoy writes plain lower-case hex
    const hash = certificate.fingerprint256.replace(/:/g, '').toLowerCase();
    this.xfcc = `By=${ownSpiffeId};Hash=${hash};URI=${id.uri}`;
  }

  /** The grant under `policy`, recomputed only when the policy object changed (a reload). */
  grantUnder(policy: AuthorizationPolicy): Grant {
    if (this.policy !== policy || this.grant === undefined) {
      this.grant = policy.grantFor(this.id.uri);
      this.policy = policy;
    }
    return this.grant;
  }

  /**
   * This identity's rate-limit bucket in `buckets`, looked up only when the limiter changed (a
   * reload) or swept the bucket out. Keyed by SPIFFE ID: every connection and certificate of
   * one identity share it.
   */
  bucketIn(buckets: KeyedTokenBuckets, nowMs: number): TokenBucket {
    if (this.buckets !== buckets || this.bucket === undefined || this.bucket.evicted) {
      this.bucket = buckets.bucket(this.id.uri, nowMs);
      this.buckets = buckets;
    }
    return this.bucket;
  }
}

/**
 * Callers by certificate fingerprint, bounded (oldest out first): every connection of one
 * peer sidecar presents the same certificate until it rotates.
 */
export class CallerCache {
  private readonly callers = new Map<string, Caller>();

  constructor(private readonly ownSpiffeId: string, private readonly limit = 1024) {}

  callerFor(id: SpiffeId, certificate: X509Certificate): Caller {
    const key = certificate.fingerprint256;
    let caller = this.callers.get(key);
    if (caller === undefined || caller.id.uri !== id.uri) {
      caller = new Caller(id, certificate, this.ownSpiffeId);
      if (this.callers.size >= this.limit) this.callers.delete(this.callers.keys().next().value as string);
      this.callers.set(key, caller);
    }
    return caller;
  }
}
