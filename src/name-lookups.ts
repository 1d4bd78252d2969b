// The host-name lookups of the outbound's upstreams and of the CA's URL (every sign, renewal
// and bundle poll of a sidecar that names its CA by host name), shared by the whole process. The system
// resolver (getaddrinfo) runs each lookup on a thread of libuv's pool, and libuv lets lookups
// hold at most half of those threads ((UV_THREADPOOL_SIZE + 1) / 2: 2 of the default 4, 8 of
// the 16 meshcar's launcher sets). A resolver that never answers holds a thread for the whole
// of resolv.conf's timeout × attempts × nameservers (10 s by default, minutes when so set),
// and every other lookup of the process waits behind: two hung names held both threads, and
// with them the other upstreams' names and every new connection to an app named by host name
// (`http://localhost:8080`), whose connect is a lookup too.
// So, as a resolver library does with its query slots:
// - one lookup per name at a time, whoever asks (upstreams sharing a name, a reload's new pool);
// - at most threads - 1 at once: one thread is always left to the rest of the process;
// - a name whose last lookup took SLOW_MS or more, or one running that long now, takes at most
//   threads - 2 of them (when there are that many): a name that answers gets a thread while
//   others hang, and names that answer go first when a thread frees.
// A lookup cannot be cancelled; one waiting here costs nothing but its place in line.

import { promises as dns, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';

export type LookupAll = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;
type Records = Awaited<ReturnType<LookupAll>>;

/** A lookup this slow is a resolver in trouble, not a resolver at work. */
export const SLOW_LOOKUP_MS = 1_000;
/** Names remembered as slow, at most (names come from the config; reloads may change them). */
const SLOW_NAMES_MAX = 10_000;

/** The threads libuv lets lookups use at once: half its pool, rounded up (its slow-I/O share). */
export function lookupThreads(poolSize: string | undefined = process.env.UV_THREADPOOL_SIZE): number {
  const asked = Number(poolSize);
  // libuv's own reading: unset or unusable is 4, and it keeps to 1..1024
  const threads = Number.isInteger(asked) && asked > 0 ? Math.min(asked, 1024) : 4;
  return Math.floor((threads + 1) / 2);
}

interface Waiting {
  readonly promise: Promise<Records>;
  resolve(records: Promise<Records>): void;
}

interface Running {
  readonly promise: Promise<Records>;
  readonly startedAt: number;
}

export class NameLookups {
  private readonly running = new Map<string, Running>();
  /** In the order asked; each name once. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly slowNames = new Set<string>();
  private readonly most: number;
  private readonly mostSlow: number;

  /** `threads`: how many lookups the resolver runs at once (lookupThreads()). */
  constructor(private readonly resolver: LookupAll, threads: number, private readonly now: () => number = Date.now) {
    this.most = Math.max(1, threads - 1);
    this.mostSlow = Math.max(1, this.most - 1);
  }

  /** Every address of `host`, as the resolver answers; shares a lookup of the same name under way or waiting. */
  readonly lookup: LookupAll = (host) => {
    const shared = this.running.get(host)?.promise ?? this.waiting.get(host)?.promise;
    if (shared !== undefined) return shared;
    let resolve!: (records: Promise<Records>) => void;
    const promise = new Promise<Records>((done) => (resolve = done));
    this.waiting.set(host, { promise, resolve });
    this.dispatch();
    return promise;
  };

  /** Lookups running now and names waiting for a thread. */
  load(): { running: number; waiting: number } {
    return { running: this.running.size, waiting: this.waiting.size };
  }

  private dispatch(): void {
    // names that answered last time first, then the slow ones while they leave a thread free
    for (const slow of [false, true]) {
      for (const [host, waiter] of this.waiting) {
        if (this.running.size >= this.most) return;
        if (this.slowNames.has(host) !== slow) continue;
        if (slow && this.slowRunning() >= this.mostSlow) return;
        this.start(host, waiter);
      }
    }
  }

  /** Running lookups of slow names, or running slowly now. */
  private slowRunning(): number {
    const now = this.now();
    let count = 0;
    for (const [host, running] of this.running) if (this.slowNames.has(host) || now - running.startedAt >= SLOW_LOOKUP_MS) count++;
    return count;
  }

  private start(host: string, waiter: Waiting): void {
    this.waiting.delete(host);
    const startedAt = this.now();
    const promise = this.resolver(host);
    this.running.set(host, { promise, startedAt });
    const settled = () => {
      this.running.delete(host);
      if (this.now() - startedAt >= SLOW_LOOKUP_MS) {
        if (this.slowNames.size >= SLOW_NAMES_MAX) this.slowNames.clear();
        this.slowNames.add(host);
      } else this.slowNames.delete(host);
      this.dispatch();
    };
    promise.then(settled, settled);
    waiter.resolve(promise);
  }
}

/** Every address of a name, as the system resolver answers (/etc/hosts, then DNS as resolv.conf says). */
const systemResolver: LookupAll = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/** The process's lookups through the system resolver: one scheduler for the one thread pool. */
export const systemLookups = new NameLookups(systemResolver, lookupThreads());

/**
 * `lookups` as the `lookup` option of a connection (net, tls, https): a request's name goes
 * through the scheduler instead of straight to getaddrinfo, where each attempt against a hung
 * resolver held another thread (a CA polled every 100 ms held both lookup threads within
 * seconds, and the inbound's app named `localhost` got no connection). Node asks for every
 * address (`all`) when it tries families in turn, else for one.
 */
export function connectionLookup(lookups: NameLookups = systemLookups): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : Number(options.family ?? 0);
    lookups.lookup(hostname).then(
      (records) => {
        const usable = family === 4 || family === 6 ? records.filter((r) => r.family === family) : [...records];
        if (usable.length === 0) {
          callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }), options.all ? [] : '', 0);
          return;
        }
        if (options.all) callback(null, usable.map((r) => ({ address: r.address, family: r.family })));
        else callback(null, (usable[0] as LookupAddress).address, (usable[0] as LookupAddress).family);
      },
      (err: NodeJS.ErrnoException) => callback(err, options.all ? [] : '', 0),
    );
  };
}
