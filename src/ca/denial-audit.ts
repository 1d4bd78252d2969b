// The CA's audit line for a denied sign request. A denial after the requester proved something
// (a join token of ours that is expired or used, an identity not allowed, a bad CSR) is written
// every time: that is the audit trail. A requester that proved nothing (no credential, a token
// this CA did not sign, an SVID it does not accept) is anyone who can reach the
// port: its denials are written at most once per client address per 10 s and 100 per 10 s in
// all (log-per-key.ts), the next line saying how many were left out. The rate limit alone let
// one address write 20 lines a second by default, and a client with many addresses (an IPv6
// /64) a line per request without bound. meshcar_ca_requests_denied_total counts every one.

import type { Logger } from 'pino';
import { describeError, type ErrorCode, type MeshcarError } from '../errors.js';
import { clip } from '../clip.js';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';

/**
 * The denials of a requester that proved nothing: what anyone who can connect may cause. A sign
 * request over the rate limit is refused before its credentials are read, so it proved nothing
 * either (and a flood of them is what the limit is for).
 */
const UNPROVEN: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['unauthenticated', 'bad_token', 'bad_svid', 'rate_limited']);

export class DenialAudit {
  private readonly unproven: LogPerKey;

  constructor(
    private readonly audit: Logger,
    windowMs?: number,
  ) {
    this.unproven = new LogPerKey(windowMs);
  }

  /** One denied request from `client` (`who`: how it authenticated, the identity asked for): its audit line, or a count toward the next one. */
  denied(client: string, error: MeshcarError, who: Record<string, unknown>): void {
    // what the requester is not told (a decoder's or our own parser's error): the operator is
    const fields = { event: 'ca.deny', result: 'denied', ...who, reason: error.code, message: error.message, ...(error.cause === undefined ? {} : { cause: clip(describeError(error.cause), 256) }) };
    if (!UNPROVEN.has(error.code)) {
      this.audit.warn(fields, 'request denied');
      return;
    }
    // over the rate limit counted apart per address: its lines do not use up the address's line
    // for the other unproven denials (all share the budget of 100 lines per window)
    const limited = error.code === 'rate_limited';
    const through = this.unproven.take(limited ? `${client} rate_limited` : client);
    if (through === undefined) return;
    this.audit.warn({ ...fields, ...leftOutFields(through) }, `request denied${leftOut(through, `${limited ? 'over the rate limit' : 'unauthenticated'} from ${client}`)}`);
  }
}
