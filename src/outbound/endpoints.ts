// The addresses one upstream is reached at, and which one the next request uses.
// IP endpoints are used as written; host names (`dns:NAME:PORT`, or a static `name:port`) are
// resolved to every address they have and re-resolved periodically, so endpoints follow the
// records. Every endpoint is an IP: sessions are pooled per address, and HTTP/2 origins are
// compared by the address actually dialled (see upstream-agent.ts).
// Selection is power of two choices over each endpoint's peak-EWMA load (endpoint-pick.ts);
// an endpoint that just failed to connect is skipped for a while (passive health), and one
// ejected as an outlier is skipped until re-admitted, unless no other endpoint is left.
// A reload may change the configured list in place (reconfigure()): endpoints that stay keep
// their object, and with it their sessions, load estimate and ejection.
// What it tells the metrics (meshcar_upstream_endpoints, meshcar_upstream_lookup_failures_total):
// the count of addresses when it changes and each failed lookup, at lookups and reloads only,
// never per request; a set its pool's retirement silenced tells nothing more.

import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { canonicalHost, formatHostPort, isNotDialable, type Endpoint } from '../config/address.js';
import { describeError } from '../errors.js';
import { initialLoad, type LoadState } from './balancer.js';
import { anyEligible, pickEndpoint } from './endpoint-pick.js';
import { usableFamilies } from './address-families.js';
import { LookupOutages } from './lookup-outages.js';
import { systemLookups, type LookupAll } from '../name-lookups.js';
import type { TrafficObserver } from '../metrics/traffic.js';

export interface UpstreamEndpoint extends LoadState {
  /** `host:port` (IPv6 in brackets): the endpoint label in logs and metrics. */
  readonly key: string;
  /** The IP dialled. */
  readonly address: string;
  readonly port: number;
  /** `https://key`, what http2-wrapper pools sessions by. */
  readonly origin: URL;
  /** performance.now() ms before which the endpoint is skipped after a connect failure (the running time: a wall clock stepped back would stretch the rest by the step); GET /upstreams shows it as a wall time. */
  downUntil: number;
}

export type { LookupAll };

/** The system resolver, through the process's one lookup scheduler (name-lookups.ts). */
export const defaultLookup: LookupAll = systemLookups.lookup;

export interface EndpointSetOptions {
  readonly refreshMs: number;
  /** The load estimate's decay (balancer.decay). */
  readonly decayMs: number;
  readonly logger: Logger;
  readonly lookup?: LookupAll;
  /** The upstream's name and the observer told of its addresses and failed lookups. */
  readonly upstream?: string;
  readonly observer?: TrafficObserver;
}

interface EndpointSetEvents {
  /** An address left the records: its sessions should wind down. */
  removed: [endpoint: UpstreamEndpoint];
}

export class EndpointSet extends EventEmitter<EndpointSetEvents> {
  private list: UpstreamEndpoint[] = [];
  private readonly byOriginHost = new Map<string, UpstreamEndpoint>();
  private timer: NodeJS.Timeout | undefined;
  private resolving: Promise<void> | undefined;
  private fixed: UpstreamEndpoint[];
  private names: ReadonlyArray<{ host: string; port: number }>;
  /** start() was called: a name a reload adds is resolved at once, and then every refreshMs. */
  private started = false;
  private readonly lookup: LookupAll;
  /** Last good addresses per name: a failed lookup keeps them rather than emptying the set. */
  private readonly lastResolved = new Map<string, UpstreamEndpoint[]>();
  /** Names whose answers had addresses of a family this host has none of (logged once each). */
  private readonly toldUnusable = new Set<string>();
  /** Names whose lookups fail now: logged when that starts and ends, not at every refresh. */
  private readonly outages: LookupOutages;
  /** The count last told to the observer (told again only when it changes). */
  private told: number | undefined;
  /** The pool was retired by a reload: a lookup still running tells nothing (the live pool of the name does). */
  private silenced = false;
  /** The last failed lookup of a name still configured, kept after it resolves again (GET /upstreams). */
  private lastFailure: { readonly host: string; readonly message: string; readonly at: number } | undefined;

  constructor(configured: readonly Endpoint[], private readonly options: EndpointSetOptions) {
    super();
    this.lookup = options.lookup ?? defaultLookup;
    this.outages = new LookupOutages(options.logger);
    this.fixed = configured.filter((e) => isIP(e.host) !== 0).map((e) => makeEndpoint(e.host, e.port));
    this.names = configured.filter((e) => isIP(e.host) === 0).map((e) => ({ host: e.host, port: e.port }));
    this.publish(this.fixed);
  }

  /** Resolves names once now, then every refreshMs. Never rejects. */
  start(): Promise<void> {
    this.started = true;
    if (this.names.length === 0) return Promise.resolve();
    const first = this.refresh();
    this.startTimer();
    return first;
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  /**
   * A reload's endpoint list for the same upstream. An endpoint that stays keeps its object
   * (the pool's sessions to it, its load estimate, its ejection: replacing the whole pool
   * redialled every endpoint and let an ejected one straight back in); one that goes is
   * 'removed' (its sessions finish their streams and close); a new one starts fresh. Names
   * still configured keep their last addresses until resolved again, which starts now.
   */
  reconfigure(configured: readonly Endpoint[]): void {
    this.fixed = configured.filter((e) => isIP(e.host) !== 0).map((e) => this.existing(e.host, e.port) ?? makeEndpoint(e.host, e.port));
    this.names = configured.filter((e) => isIP(e.host) === 0).map((e) => ({ host: e.host, port: e.port }));
    const keys = new Set(this.names.map(({ host, port }) => `${host}:${port}`));
    for (const key of [...this.lastResolved.keys()]) if (!keys.has(key)) this.lastResolved.delete(key);
    this.outages.keepOnly(new Set(this.names.map(({ host }) => host)));
    if (this.lastFailure && !this.names.some(({ host }) => host === this.lastFailure?.host)) this.lastFailure = undefined;
    this.publish([...this.fixed, ...[...keys].flatMap((key) => this.lastResolved.get(key) ?? [])]);
    if (this.names.length === 0) return this.stop();
    if (!this.started) return;
    this.startTimer();
    // a lookup of the old names still running publishes nothing (resolveNames): resolve the new ones now
    this.resolving = undefined;
    void this.refresh();
  }

  /**
   * A new pool replacing `previous` (a reload that changed the upstream's identity, balancer or
   * outlier settings) starts from its last addresses of the names both have, as new endpoints
   * (the old pool's sessions stay its own): during a DNS outage the new pool had none, and every
   * request was 503 until the name resolved again. Before start().
   */
  adoptLastAddresses(previous: EndpointSet): void {
    let adopted = false;
    for (const { host, port } of this.names) {
      const key = `${host}:${port}`;
      const last = previous.lastResolved.get(key);
      if (last === undefined || this.lastResolved.has(key)) continue;
      this.lastResolved.set(key, last.map((e) => makeEndpoint(e.address, e.port)));
      adopted = true;
    }
    if (adopted) this.publish([...this.fixed, ...this.names.flatMap(({ host, port }) => this.lastResolved.get(`${host}:${port}`) ?? [])]);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A reload took the pool out of routing: no more lookups, and one still running tells the
   * metrics nothing, or a retired pool's late answer would overwrite the gauge of the pool now
   * routing under the same name (or bring back a removed upstream's series).
   */
  retire(): void {
    this.silenced = true;
    this.stop();
  }

  get size(): number {
    return this.list.length;
  }

  all(): readonly UpstreamEndpoint[] {
    return this.list;
  }

  /** A first resolution in progress, for requests that arrive before any address is known. */
  pending(): Promise<void> | undefined {
    return this.resolving;
  }

  /** Why no address is known, for the answer to a request that found none (first-addresses.ts). */
  noAddressReason(): string | undefined {
    const failing = this.outages.describe();
    if (failing !== undefined) return failing;
    if (this.resolving) return `the lookup of ${this.names.map(({ host }) => host).join(', ')} has not answered yet`;
    return undefined;
  }

  /** The last failed lookup (the name, why, when) and whether that name's lookups still fail; undefined if none failed. */
  lookupFailure(): { host: string; message: string; at: number; failingNow: boolean } | undefined {
    const last = this.lastFailure;
    return last && { ...last, failingNow: this.outages.failingNow(last.host) };
  }

  forOriginHost(host: string): UpstreamEndpoint | undefined {
    return this.byOriginHost.get(host);
  }

  /** Still one of the set's endpoints (not removed by a reload or a DNS refresh). */
  has(endpoint: UpstreamEndpoint): boolean {
    return this.byOriginHost.get(endpoint.origin.host) === endpoint;
  }

  /** Whether an attempt avoiding `avoid` and those `tried` has another endpoint to go to now (a 503's Retry-After: attempt-retry.ts). */
  hasOther(now: number, avoid?: UpstreamEndpoint, tried?: ReadonlySet<UpstreamEndpoint>): boolean {
    return anyEligible(this.list, now, avoid, tried);
  }

  /** The endpoint for the next attempt: power of two choices over the load estimates (endpoint-pick.ts). No allocation. */
  pick(now: number, avoid?: UpstreamEndpoint, tried?: ReadonlySet<UpstreamEndpoint>): UpstreamEndpoint | undefined {
    return pickEndpoint(this.list, this.options.decayMs, now, avoid, tried);
  }

  private refresh(): Promise<void> {
    if (this.resolving) return this.resolving;
    const resolving = this.resolveNames().finally(() => {
      // a reload may have started another one meanwhile (reconfigure): that one stays
      if (this.resolving === resolving) this.resolving = undefined;
    });
    this.resolving = resolving;
    return resolving;
  }

  private async resolveNames(): Promise<void> {
    const names = this.names;
    const results = await Promise.all(
      names.map(async ({ host, port }) => {
        const key = `${host}:${port}`;
        try {
          const records = this.reachable(host, await this.lookup(host));
          const resolved = records.map((r) => this.existing(r.address, port) ?? makeEndpoint(r.address, port));
          // a lookup of names a reload replaced meanwhile records nothing (nor is it published, below)
          if (names !== this.names) return [];
          this.lastResolved.set(key, resolved);
          this.outages.resolved(host);
        } catch (err) {
          if (names === this.names) {
            const message = describeError(err);
            this.outages.failed(host, message);
            this.lastFailure = { host, message, at: Date.now() };
            if (!this.silenced && this.options.upstream !== undefined) this.options.observer?.upstreamLookupFailed?.(this.options.upstream);
          }
        }
        return this.lastResolved.get(key) ?? [];
      }),
    );
    // the names a reload replaced meanwhile: their addresses would bring back what it removed
    if (names !== this.names) return;
    this.publish([...this.fixed, ...results.flat()]);
  }

  /** The answers this host can connect to (address-families.ts); none is a failed lookup. */
  private reachable(host: string, answered: Awaited<ReturnType<LookupAll>>): Awaited<ReturnType<LookupAll>> {
    // 0.0.0.0 or :: (a sinkhole's answer) would be dialled as this host: never an upstream
    const records = answered.filter((r) => !isNotDialable(r.address));
    if (records.length === 0) throw new Error(`the lookup answered only ${answered[0]?.address}, which is no address to dial (it means this host)`);
    const families = usableFamilies();
    const usable = records.filter((r) => families.has(r.family as 4 | 6));
    if (usable.length < records.length && !this.toldUnusable.has(host)) {
      this.toldUnusable.add(host);
      const left = records.filter((r) => !families.has(r.family as 4 | 6));
      const addresses = left.slice(0, 10).map((r) => r.address);
      this.options.logger.info({ host, addresses, count: left.length }, `left out addresses of an upstream endpoint: this host has no IPv${left[0]?.family} address to connect to them from`);
    }
    if (usable.length === 0) throw new Error(records.length === 0 ? 'the lookup answered no address' : `every address is IPv${records[0]?.family}, and this host has none of that family`);
    return usable;
  }

  private existing(address: string, port: number): UpstreamEndpoint | undefined {
    return this.byOriginHost.get(makeOriginHost(address, port));
  }

  private publish(candidates: UpstreamEndpoint[]): void {
    const next: UpstreamEndpoint[] = [];
    const seen = new Set<string>();
    for (const endpoint of candidates) {
      if (seen.has(endpoint.key)) continue;
      seen.add(endpoint.key);
      next.push(endpoint);
    }
    const removed = this.list.filter((e) => !seen.has(e.key));
    this.list = next;
    this.byOriginHost.clear();
    for (const endpoint of next) this.byOriginHost.set(endpoint.origin.host, endpoint);
    for (const endpoint of removed) this.emit('removed', endpoint);
    this.tell(next.length);
  }

  private tell(count: number): void {
    const { upstream, observer } = this.options;
    if (this.silenced || upstream === undefined || count === this.told) return;
    this.told = count;
    observer?.upstreamEndpointsChanged?.(upstream, count);
  }
}

// Endpoints are keyed by the address's canonical form (canonicalHost): `[0:0:0:0:0:0:0:1]:443`,
// `[::1]:443` and `[::1]:443` again are one endpoint (meshcar_upstream_endpoints 1, not 2), and
// `[::ffff:10.0.0.1]:443` is `10.0.0.1:443`, the address a dial to it reaches.
function makeOriginHost(address: string, port: number): string {
  return new URL(`https://${formatHostPort({ host: canonicalHost(address), port })}`).host;
}

function makeEndpoint(written: string, port: number): UpstreamEndpoint {
  const address = canonicalHost(written);
  const key = formatHostPort({ host: address, port });
  return { key, address, port, origin: new URL(`https://${key}`), downUntil: 0, ...initialLoad() };
}
