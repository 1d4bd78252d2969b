// What the log says about host-name endpoints whose lookups fail: one warn line when a name's
// lookups start failing, then at most one a minute while they go on (saying how many failed
// since when), and one info line when the name resolves again. A warn line per failed lookup
// wrote one per name every outbound.dnsRefresh for as long as DNS was out (10 a second per name
// at 100ms; 720 an hour at the default 5 s), burying everything else in the log. Spaced by the
// running time, not the wall clock: a clock stepped back an hour silenced the reminders for an
// hour, and the line said the outage began in the future.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** While a name's lookups fail, a reminder at most this often. */
const REPEAT_MS = 60_000;

interface Outage {
  readonly since: number;
  failures: number;
  loggedAt: number;
  lastError: string;
}

export class LookupOutages {
  private readonly failing = new Map<string, Outage>();

  constructor(
    private readonly logger: Logger,
    private readonly repeatMs = REPEAT_MS,
  ) {}

  /** A lookup of `host` failed (`err` as the log says it); the last addresses stay in use. */
  failed(host: string, err: string): void {
    const now = performance.now();
    const outage = this.failing.get(host);
    if (outage === undefined) {
      this.failing.set(host, { since: now, failures: 1, loggedAt: now, lastError: err });
      this.logger.warn({ host, err }, 'could not resolve an upstream endpoint; keeping its last addresses');
      return;
    }
    outage.failures += 1;
    outage.lastError = err;
    if (now - outage.loggedAt < this.repeatMs) return;
    outage.loggedAt = now;
    this.logger.warn({ host, err, failures: outage.failures, sinceSeconds: Math.round((now - outage.since) / 1000) }, 'still cannot resolve an upstream endpoint; keeping its last addresses');
  }

  /** A lookup of `host` answered: the end of its outage, if it had one. */
  resolved(host: string): void {
    const outage = this.failing.get(host);
    if (outage === undefined) return;
    this.failing.delete(host);
    this.logger.info({ host, failures: outage.failures, afterSeconds: Math.round((performance.now() - outage.since) / 1000) }, 'upstream endpoint resolves again');
  }

  /** The failing lookups, as a request refused for want of an address says them; undefined when none fails. */
  describe(): string | undefined {
    if (this.failing.size === 0) return undefined;
    return [...this.failing].map(([host, outage]) => `the lookup of ${host} failed: ${outage.lastError}`).join('; ');
  }

  /** The lookups of `host` fail now (GET /upstreams). */
  failingNow(host: string): boolean {
    return this.failing.has(host);
  }

  /** Names no longer configured (a reload): their outages end without a line. */
  keepOnly(hosts: ReadonlySet<string>): void {
    for (const host of [...this.failing.keys()]) if (!hosts.has(host)) this.failing.delete(host);
  }
}
