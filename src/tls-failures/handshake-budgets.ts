// What failed TLS handshakes may cost this side per peer address (the inbound's callers, the
// outbound's endpoints), and the address's wait once they cost more (costly-chains.ts says when
// a failed handshake is costly). Each address has a budget of bytes read by its failed
// handshakes beyond the first 2 KiB of each: 64 KiB at once, refilled at 2 KiB a second. A
// handshake judged costly spends the whole budget at once (its /64 is charged its bytes). Each handshake in
// progress holds 4 KiB of its address's budget until it ends, and a new one is refused when
// those held already exceed what is left: handshakes kept open after their chains were checked
// (charged only when they fail, at the handshake timeout) cannot outnumber the budget (17 at a
// full one, one at a time once it is spent; the outbound, which makes its own dials, bounds them
// only once the budget is below full). An IPv6 address's /64 has a budget of its own, eight
// times larger, so that one host cannot start afresh on each of its addresses. A spent budget
// refuses the address (or the /64) for 1 s (the inbound closes its connections at accept, the
// outbound does not dial it), doubling with each spent budget that follows within 10 min, up to
// 60 s; what was spent beyond it is owed, refilled only after the wait. At most 10,000 keys are
// remembered; the least recently used go first.

import { isIPv6 } from 'node:net';

const ADDRESS_BUDGET = { capacity: 64 * 1024, perSecond: 2 * 1024 };
const PREFIX_BUDGET = { capacity: 8 * ADDRESS_BUDGET.capacity, perSecond: 8 * ADDRESS_BUDGET.perSecond };
/** What of each failed handshake is not charged: a mesh caller's whole handshake fits. */
const FREE_BYTES_PER_HANDSHAKE = 2 * 1024;
/** What each handshake in progress holds of its address's budget until it ends. */
const RESERVED_PER_HANDSHAKE = 4 * 1024;
const FIRST_WAIT_MS = 1_000;
const MAX_WAIT_MS = 60_000;
/** A key quiet this long since its last wait starts again at FIRST_WAIT_MS. */
const FORGET_AFTER_MS = 10 * 60_000;
const MAX_KEYS = 10_000;

/** The budget of the `i`th key of an address (addressKeys): the address's, then its /64's. */
function budgetOf(i: number): typeof ADDRESS_BUDGET {
  return i === 0 ? ADDRESS_BUDGET : PREFIX_BUDGET;
}

interface Standing {
  /** Bytes left, as of `at` (below 0: owed). */
  tokens: number;
  /** Handshakes in progress, each holding RESERVED_PER_HANDSHAKE. */
  inProgress: number;
  at: number;
  /** Refused (at accept, or not dialled) until this time. */
  until: number;
  /** The next wait's length. */
  nextWaitMs: number;
  /** When the last wait began (-Infinity: never). */
  lastWaitAt: number;
}

/**
 * The keys an address is judged by: the address itself (an IPv4-mapped one as IPv4), and for
 * IPv6 its /64 as well.
 */
export function addressKeys(address: string): readonly string[] {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return [mapped[1]!];
  if (!isIPv6(address)) return [address];
  const groups = expandIPv6(address);
  return [groups.join(':'), `${groups.slice(0, 4).join(':')}::/64`];
}

/** The eight 16-bit groups of an IPv6 address, as hex without leading zeros (a zone id dropped). */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const part = (text: string) => (text === '' ? [] : text.split(':'));
  const groups = tail === undefined ? part(head) : [...part(head), ...Array<string>(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

export class AddressPenalties {
  private readonly standings = new Map<string, Standing>();

  /**
   * `boundWhileFull` false: handshakes in progress are bounded only once a failure has spent
   * part of the budget (the outbound: it makes its own dials, as many as its app's requests ask
   * for, and an upstream of the mesh that never fails must take every one; the inbound bounds
   * them from the first, as a caller chooses how many it opens).
   */
  constructor(
    private readonly now: () => number,
    private readonly boundWhileFull = true,
  ) {}

  /** The first of `keys` refused now, and for how long more (ms); undefined when none is. */
  refused(keys: readonly string[]): { key: string; ms: number } | undefined {
    const now = this.now();
    for (const key of keys) {
      const standing = this.standings.get(key);
      if (standing !== undefined && standing.until > now) return { key, ms: standing.until - now };
    }
    return undefined;
  }

  /**
   * A handshake from the address `keys` name begins: false (nothing held) when what the
   * handshakes in progress there hold already exceeds the budget left.
   */
  reserve(keys: readonly string[]): boolean {
    const now = this.now();
    const standings = keys.map((key, i) => this.standingOf(key, budgetOf(i), now));
    const bounded = (s: Standing, i: number) => this.boundWhileFull || s.tokens < budgetOf(i).capacity;
    if (standings.some((s, i) => bounded(s, i) && s.tokens - s.inProgress * RESERVED_PER_HANDSHAKE < 0)) return false;
    for (const standing of standings) standing.inProgress++;
    return true;
  }

  /** A handshake `reserve` admitted has ended (done, failed or closed): what it held goes back. */
  release(keys: readonly string[]): void {
    for (const key of keys) {
      const standing = this.standings.get(key);
      if (standing !== undefined && standing.inProgress > 0) standing.inProgress--;
    }
  }

  /**
   * A handshake from the address `keys` name failed after `bytes` were read from it (`costly`:
   * judged costly, costly-chains.ts): the key whose budget that spent, and its wait (ms), or
   * undefined while every budget holds.
   */
  failedHandshake(keys: readonly string[], bytes: number, costly: boolean): { key: string; ms: number } | undefined {
    const now = this.now();
    let spent: { key: string; ms: number } | undefined;
    keys.forEach((key, i) => {
      const standing = this.standingOf(key, budgetOf(i), now);
      // waiting already: what fails meanwhile (its handshakes in progress, closed when the wait
      // began) neither spends more nor lengthens the next wait
      if (standing.until > now) return;
      // a costly one spends the address's whole budget; its /64 is charged its bytes (a /64 is a
      // cloud subnet's: one hostile pod, or one broken TLS 1.2 client, must not shut out all)
      standing.tokens -= costly && i === 0 ? Math.max(standing.tokens, 0) + 1 : Math.max(0, bytes - FREE_BYTES_PER_HANDSHAKE);
      if (standing.tokens < 0) {
        // each key spent waits (an address and its /64 both, for a costly one)
        const ms = this.wait(standing, now);
        spent ??= { key, ms };
      }
    });
    return spent;
  }

  /** How long (ms) until the first of `keys` that owes part of its budget owes nothing; 0 when none owes. */
  owedMs(keys: readonly string[]): number {
    const now = this.now();
    let ms = 0;
    keys.forEach((key, i) => {
      const standing = this.standings.get(key);
      if (standing === undefined) return;
      const tokens = standing.tokens + (Math.max(0, now - standing.at) / 1000) * budgetOf(i).perSecond;
      if (tokens < 0) ms = Math.max(ms, Math.max(0, standing.at - now) + (-tokens / budgetOf(i).perSecond) * 1000);
    });
    return ms;
  }

  private standingOf(key: string, budget: typeof ADDRESS_BUDGET, now: number): Standing {
    let standing = this.standings.get(key);
    if (standing === undefined) {
      standing = { tokens: budget.capacity, inProgress: 0, at: now, until: -Infinity, nextWaitMs: FIRST_WAIT_MS, lastWaitAt: -Infinity };
    } else if (now > standing.at) {
      standing.tokens = Math.min(budget.capacity, standing.tokens + ((now - standing.at) / 1000) * budget.perSecond);
      standing.at = now;
    }
    // deleted and set again: the Map's order is the order of last use, the oldest first to go
    this.standings.delete(key);
    this.standings.set(key, standing);
    if (this.standings.size > MAX_KEYS) this.standings.delete(this.standings.keys().next().value as string);
    return standing;
  }

  /** Starts the key's wait: its length, doubled from the last one's within FORGET_AFTER_MS; what was spent beyond the budget is owed, refilled from the wait's end. */
  private wait(standing: Standing, now: number): number {
    const ms = now - standing.lastWaitAt < FORGET_AFTER_MS ? standing.nextWaitMs : FIRST_WAIT_MS;
    standing.until = now + ms;
    standing.nextWaitMs = Math.min(ms * 2, MAX_WAIT_MS);
    standing.lastWaitAt = now;
    standing.at = standing.until;
    return ms;
  }
}
