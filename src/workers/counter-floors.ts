// The floor under every cumulative series on the primary's /metrics (workers > 1): a counter's
// samples, a histogram's buckets, sum and count, and a summary's sum and count are published no
// lower than they were on the last page, for as long as the primary runs. Gauges (and a
// summary's quantiles, which go up and down) are not touched.
//
// Why a floor: the page is a floating-point sum over the workers and the departed workers'
// base (departed-counts.ts), and float addition is not associative. When a worker exits, its
// last values move from one addend into another (the base) and the order of the additions
// changes, so the same counts can sum to one ulp less: (0.1 + 0.2) + 0.3 = 0.6000000000000001,
// then (0.2 + 0.3) + (0 + 0.1) = 0.6. Prometheus reads any decrease of a counter (or of a
// histogram's _sum or _count) as a reset, so rate() and increase() count the whole value again.
// A fixed summation order cannot prevent that (the addends themselves change when a worker's
// counts join the base), nor can it order two scrapes whose answers were gathered in one order
// and rendered in the other; a floor holds whatever the arithmetic or the timing does. The
// floor is the last value published, so a series held by it rises again as soon as its real
// sum passes it (within the ulp, or by what a departed worker's dropped series had counted).
//
// Bounded: a series is remembered only while it is on the page. One missing from a page (its
// labels gone in every worker and in the base, or metrics.requests turned off) loses its floor
// there, so what goes away for good is not kept forever; should it come back, it starts anew, as
// Prometheus (which saw it go stale) takes it. Cheap per scrape: samples are raised in place,
// a floor is allocated once per series (not per scrape), and the one string built per sample is
// its key (as prom-client's own aggregation builds one per sample and worker).

/** A family as aggregated (prom-client's JSON shape): only what the floor reads and writes. */
export interface FloorFamily {
  readonly name: string;
  readonly type: unknown;
  readonly values: ReadonlyArray<{ value: number; readonly labels: Readonly<Record<string, string | number>>; readonly metricName?: string }>;
}

interface Floor {
  value: number;
  /** The page it was last on: one not on the current page is dropped. */
  page: number;
}

/** One sample's identity within its family: its metric name (_bucket, _sum...) and its labels in name order. */
function seriesKey(metricName: string | undefined, labels: Readonly<Record<string, string | number>>): string {
  let key = metricName ?? '';
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  // each value's length before it: no label value can be mistaken for a separator
  for (const name of names) {
    const value = String(labels[name]);
    key += `,${name}=${value.length}:${value}`;
  }
  return key;
}

export class CounterFloors {
  /** Family name -> series key -> its floor. */
  private readonly floors = new Map<string, Map<string, Floor>>();
  private page = 0;

  /**
   * Raises, in place, every cumulative sample of `families` (one page, aggregated) that is
   * below its floor, and makes the page's values the new floors. Called synchronously between
   * the aggregation and the rendering, so pages get their floors in the order they are published.
   */
  hold(families: Iterable<FloorFamily>): void {
    const page = ++this.page;
    for (const family of families) {
      const type = String(family.type);
      const summary = type === 'summary';
      if (type !== 'counter' && type !== 'histogram' && !summary) continue;
      let floors = this.floors.get(family.name);
      if (floors === undefined) this.floors.set(family.name, (floors = new Map()));
      for (const sample of family.values) {
        // a summary's quantile samples have no metricName (its _sum and _count do)
        if (summary && sample.metricName === undefined) continue;
        const key = seriesKey(sample.metricName, sample.labels);
        const floor = floors.get(key);
        if (floor === undefined) floors.set(key, { value: sample.value, page });
        else {
          if (sample.value < floor.value) sample.value = floor.value;
          else floor.value = sample.value;
          floor.page = page;
        }
      }
    }
    for (const [name, floors] of this.floors) {
      for (const [key, floor] of floors) if (floor.page !== page) floors.delete(key);
      if (floors.size === 0) this.floors.delete(name);
    }
  }

  /** metrics.requests turned off: those families count from zero again, not from their floor. */
  forget(names: ReadonlySet<string>): void {
    for (const name of names) this.floors.delete(name);
  }

  /** How many series have a floor (for tests: the memory is bounded by the last page). */
  get size(): number {
    let size = 0;
    for (const floors of this.floors.values()) size += floors.size;
    return size;
  }
}
