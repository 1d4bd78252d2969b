// /metrics pages shared between scrapes. Rendering a large registry costs tens of ms of event
// loop and a fresh copy of the page; a flood of scrapes (many connections, or one pipelining)
// must multiply neither. Per variant (Prometheus text or OpenMetrics: the only thing a page
// depends on), at most one render runs at a time: a scrape that comes while one runs, or
// within minGapMs of the last one's start, waits for the next render, which every scrape that
// came meanwhile shares (the same Buffer, and one gzip of it). A scrape is never answered from
// a render that began before it came, so whatever happened before it asked (a reload just
// answered, a request just counted) is on its page; the price is a wait of up to minGapMs for
// scrapes close together, which Prometheus (one scrape per interval) never sees.

import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { wantsOpenMetrics } from '../metrics/openmetrics.js';

/** Renders of one variant start at least this far apart while scrapes keep coming. */
export const METRICS_MIN_GAP_MS = 1_000;

const gzipAsync = promisify(gzip);

export interface MetricsPage {
  readonly contentType: string;
  readonly body: Buffer;
  /** The body gzipped, computed once for every scrape sharing the page. */
  gzipped(): Promise<Buffer>;
}

type Render = (accept: string | undefined) => Promise<{ contentType: string; body: string }>;

class Page implements MetricsPage {
  private zipped: Promise<Buffer> | undefined;
  constructor(
    readonly contentType: string,
    readonly body: Buffer,
  ) {}

  gzipped(): Promise<Buffer> {
    this.zipped ??= gzipAsync(this.body);
    return this.zipped;
  }
}

/** One variant's renders: one at a time, the next shared by everyone waiting for it. */
class Coalesced {
  private inFlight: Promise<MetricsPage> | undefined;
  private next: Promise<MetricsPage> | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly render: () => Promise<MetricsPage>,
    private readonly minGapMs: number,
  ) {}

  page(): Promise<MetricsPage> {
    if (this.next) return this.next;
    if (!this.inFlight && performance.now() - this.lastStart >= this.minGapMs) return this.start();
    const running = this.inFlight;
    this.next = (async () => {
      await running?.catch(() => undefined);
      const wait = this.lastStart + this.minGapMs - performance.now();
      // unref'd: a scrape waiting holds its connection, which holds the process anyway
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
      // from here on a new scrape waits for the render after this one: this one began before it came
      this.next = undefined;
      return this.start();
    })();
    return this.next;
  }

  private start(): Promise<MetricsPage> {
    this.lastStart = performance.now();
    const run = this.render();
    this.inFlight = run;
    const done = () => {
      if (this.inFlight === run) this.inFlight = undefined;
    };
    run.then(done, done);
    return run;
  }
}

export class SharedRenders {
  private readonly variants = new Map<string, Coalesced>();

  /** `render`: the state's metrics(accept); it is called with a canonical Accept per variant. */
  constructor(
    private readonly render: Render,
    private readonly minGapMs = METRICS_MIN_GAP_MS,
  ) {}

  page(accept: string | undefined): Promise<MetricsPage> {
    const openMetrics = wantsOpenMetrics(accept);
    const key = openMetrics ? 'openmetrics' : 'text';
    let variant = this.variants.get(key);
    if (!variant) {
      const canonical = openMetrics ? 'application/openmetrics-text' : undefined;
      variant = new Coalesced(async () => {
        const { contentType, body } = await this.render(canonical);
        return new Page(contentType, Buffer.from(body));
      }, this.minGapMs);
      this.variants.set(key, variant);
    }
    return variant.page();
  }
}
