// What failed TLS handshakes may cost the inbound per caller address, and the address's wait
// once they cost more (refused-chains.ts says why a failed handshake is costly). Each address
// has a budget of bytes read by its failed handshakes: 64 KiB at once, refilled at 2 KiB a
// second (a broken mesh caller redialling every 5 s spends ~0.5 KiB a second; a hostile chain
// costs ~4.6 ms of CPU per KiB checked, so the budget holds one address to ~1 % of a core).
// An IPv6 address's /64 has a budget of its own, eight times larger, so that one host cannot
// start afresh on each of its addresses, without one address shutting out its neighbours. A
// chain judged costly on its own (more certificates than a mesh SVID's, a key no SVID holds)
// spends the whole budget at once. A spent budget refuses the address (or the /64) at accept
// for 1 s, doubling with each spent budget that follows within 10 min, up to 60 s; the budget
// refills only after the wait. At most 10,000 keys are remembered; the oldest go first.

import { isIPv6 } from 'node:net';

const ADDRESS_BUDGET = { capacity: 64 * 1024, perSecond: 2 * 1024 };
const PREFIX_BUDGET = { capacity: 8 * ADDRESS_BUDGET.capacity, perSecond: 8 * ADDRESS_BUDGET.perSecond };
const FIRST_WAIT_MS = 1_000;
const MAX_WAIT_MS = 60_000;
/** A key quiet this long since its last wait starts again at FIRST_WAIT_MS. */
const FORGET_AFTER_MS = 10 * 60_000;
const MAX_KEYS = 10_000;

interface Standing {
  /** Bytes left, as of `at`. */
  tokens: number;
  at: number;
  /** Refused at accept until this time. */
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

  constructor(private readonly now: () => number) {}

  /** The first of `keys` refused at accept now, and for how long more (ms); undefined when none is. */
  refused(keys: readonly string[]): { key: string; ms: number } | undefined {
    const now = this.now();
    for (const key of keys) {
      const standing = this.standings.get(key);
      if (standing !== undefined && standing.until > now) return { key, ms: standing.until - now };
    }
    return undefined;
  }

  /**
   * A handshake from the address `keys` name failed after `bytes` were read from it (`costly`:
   * its chain alone was judged costly): the key whose budget that spent, and its wait (ms), or
   * undefined while every budget holds.
   */
  failedHandshake(keys: readonly string[], bytes: number, costly: boolean): { key: string; ms: number } | undefined {
    const now = this.now();
    let spent: { key: string; ms: number } | undefined;
    keys.forEach((key, i) => {
      const budget = i === 0 ? ADDRESS_BUDGET : PREFIX_BUDGET;
      const standing = this.standingOf(key, budget, now);
      // waiting already: what fails meanwhile (its handshakes in progress, closed when the wait
      // began) neither spends more nor lengthens the next wait
      if (standing.until > now) return;
      standing.tokens -= costly && i === 0 ? standing.tokens + 1 : bytes;
      if (standing.tokens < 0 && spent === undefined) spent = { key, ms: this.wait(standing, now) };
    });
    return spent;
  }

  private standingOf(key: string, budget: typeof ADDRESS_BUDGET, now: number): Standing {
    let standing = this.standings.get(key);
    if (standing === undefined) {
      standing = { tokens: budget.capacity, at: now, until: -Infinity, nextWaitMs: FIRST_WAIT_MS, lastWaitAt: -Infinity };
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

  /** Starts the key's wait: its length, doubled from the last one's within FORGET_AFTER_MS; the budget refills from the wait's end. */
  private wait(standing: Standing, now: number): number {
    const ms = now - standing.lastWaitAt < FORGET_AFTER_MS ? standing.nextWaitMs : FIRST_WAIT_MS;
    standing.until = now + ms;
    standing.nextWaitMs = Math.min(ms * 2, MAX_WAIT_MS);
    standing.lastWaitAt = now;
    standing.tokens = 0;
    standing.at = standing.until;
    return ms;
  }
}
