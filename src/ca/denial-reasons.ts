// The closed list of reasons meshcar_ca_requests_denied_total{reason} counts, each exported at 0
// from the CA server's start: a counter series first seen at 1 has no increase to Prometheus, so
// increase()/rate() over it missed every reason's first denial. Every place the CA counts a
// denial goes through countCaDenial, so no series outside this list can appear.

import type { ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';

/** What the CA refuses a request with: the sign path, the rate limit, the path and method, the HTTP parser, CONNECT. */
export type CaDenialReason = Extract<
  ErrorCode,
  // the request's HTTP (parser-refusals.ts: the parser, CONNECT, Expect; server.ts: the sign
  // body, the rate limit, an unknown path and a method a path does not take, as Envoy counts
  // its no_route: a scan of the port shows here)
  | 'bad_request' | 'headers_too_large' | 'request_timeout' | 'body_too_large' | 'malformed_json' | 'rate_limited' | 'not_found' | 'method_not_allowed' | 'unsupported_method' | 'expectation_failed'
  // who is asking (client-auth.ts, join-tokens.ts, token-keys.ts, token-ledger.ts)
  | 'unauthenticated' | 'bad_token' | 'token_expired' | 'token_used' | 'bad_svid'
  // what is asked (authority.ts)
  | 'bad_csr' | 'weak_key' | 'identity_not_allowed'
  // the client left before its sign request's body was whole (no answer, no CA fault)
  | 'client_closed'
  // the CA's own folder: an expired issuer or an unreadable ledger, its lock held too long (a
  // CA command's: forbidden; a single-use token's spend: ca_busy, to retry), a bug
  | 'ca_missing' | 'forbidden' | 'ca_busy' | 'internal'
>;

/** Every CaDenialReason (a Record, so a reason added to the type and not here fails to compile). */
const EVERY_CA_DENIAL_REASON: Record<CaDenialReason, true> = {
  bad_request: true, headers_too_large: true, request_timeout: true, body_too_large: true, malformed_json: true, rate_limited: true, not_found: true, method_not_allowed: true, unsupported_method: true, expectation_failed: true,
  unauthenticated: true, bad_token: true, token_expired: true, token_used: true, bad_svid: true,
  bad_csr: true, weak_key: true, identity_not_allowed: true,
  client_closed: true,
  ca_missing: true, forbidden: true, ca_busy: true, internal: true,
};
export const CA_DENIAL_REASONS = Object.keys(EVERY_CA_DENIAL_REASON) as readonly CaDenialReason[];

export function isCaDenialReason(code: ErrorCode): code is CaDenialReason {
  return Object.hasOwn(EVERY_CA_DENIAL_REASON, code);
}

/** Every reason's series at 0, as the CA server starts. */
export function zeroCaDenials(metrics: Metrics): void {
  for (const reason of CA_DENIAL_REASONS) metrics.caRequestsDenied.labels(reason).inc(0);
}

/**
 * One denial counted. A code outside the list (a bug: a new refusal not added above) is counted
 * as `internal`, so the exported series stay the ones at 0 from the start; the caller's error
 * log names the code.
 */
export function countCaDenial(metrics: Metrics, code: ErrorCode): void {
  metrics.caRequestsDenied.labels(isCaDenialReason(code) ? code : 'internal').inc();
}
