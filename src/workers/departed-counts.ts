// What workers that are gone had counted (workers > 1), kept by the primary so the totals it
// shows never go down when a worker dies or is recycled (Prometheus would read a drop as a
// counter reset, and rate()/increase() would spike), as Envoy keeps a restarted worker's stats
// in its parent. Only what adds up is kept: counter and summed histogram samples from /metrics
// and the counts of /endpoints; gauges describe live processes and are not carried over.
// The primary knows a worker's counts as of its last answer (a scrape, GET /endpoints): what a
// worker counted after that and before it died is lost, as nothing asks a worker on a timer.
// The base is bounded: workers restarted over weeks of changing traffic could each have learned
// other routes, so past `maxSamples` distinct samples (and as many /endpoints rows, the most
// used kept) a new one is not kept (a histogram series whole or not at all); the ones kept
// still add up.

import type { MetricsJson, WorkerEndpoints } from './messages.js';
import { mergeEndpoints } from './merge-endpoints.js';

type Family = MetricsJson[number];
type Sample = Family['values'][number];

/** Only the families whose samples add up across processes: counters, and histograms summed. */
function additive(family: Family): boolean {
  const type = String(family.type);
  return (type === 'counter' || type === 'histogram') && (family.aggregator ?? 'sum') === 'sum';
}

const sortedLabels = (sample: Sample, without?: string) =>
  Object.entries(sample.labels ?? {})
    .filter(([name]) => name !== without)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const sampleKey = (sample: Sample): string => JSON.stringify([(sample as { metricName?: string }).metricName ?? '', sortedLabels(sample)]);

/** A histogram series' samples (its buckets, sum and count) share this key; a counter's sample has its own. */
const seriesKey = (sample: Sample): string => JSON.stringify(sortedLabels(sample, 'le'));

/** At most this many distinct samples, and /endpoints rows, of departed workers are kept. */
export const MAX_DEPARTED_SAMPLES = 200_000;

export class DepartedCounts {
  /** Per live worker, its additive families as of its last metrics answer. */
  private readonly lastMetrics = new Map<number, MetricsJson>();
  private readonly lastEndpoints = new Map<number, WorkerEndpoints>();
  /** The departed workers' samples, summed: family name -> sample key -> sample. */
  private readonly metricsBase = new Map<string, { family: Omit<Family, 'values'>; samples: Map<string, Sample> }>();
  private endpointsBase: WorkerEndpoints = { endpoints: [], discovery: [] };
  private sampleCount = 0;

  constructor(private readonly maxSamples = MAX_DEPARTED_SAMPLES) {}

  /** A live worker's metrics answer: the counts to carry over should it go. */
  sawMetrics(worker: number, answer: MetricsJson): void {
    this.lastMetrics.set(worker, answer.filter(additive));
  }

  sawEndpoints(worker: number, answer: WorkerEndpoints): void {
    this.lastEndpoints.set(worker, answer);
  }

  /** The last counts a live worker answered with (for one that does not answer now), if any. */
  lastOf(worker: number): MetricsJson | undefined {
    return this.lastMetrics.get(worker);
  }

  lastEndpointsOf(worker: number): WorkerEndpoints | undefined {
    return this.lastEndpoints.get(worker);
  }

  /** The worker is gone: its last counts join the base. */
  departed(worker: number): void {
    const metrics = this.lastMetrics.get(worker);
    this.lastMetrics.delete(worker);
    for (const family of metrics ?? []) {
      const { values, ...rest } = family;
      const kept = this.metricsBase.get(family.name) ?? { family: rest, samples: new Map<string, Sample>() };
      this.metricsBase.set(family.name, kept);
      // a histogram series is kept whole or not at all: some of its buckets without the others,
      // its sum or its count would make the aggregated buckets non-cumulative, +Inf not the count
      const series = new Map<string, Sample[]>();
      for (const sample of values) {
        const key = seriesKey(sample);
        const samples = series.get(key);
        if (samples) samples.push(sample);
        else series.set(key, [sample]);
      }
      for (const samples of series.values()) {
        const fresh = samples.filter((sample) => !kept.samples.has(sampleKey(sample))).length;
        const fits = this.sampleCount + fresh <= this.maxSamples;
        for (const sample of samples) {
          const key = sampleKey(sample);
          const seen = kept.samples.get(key);
          if (seen) kept.samples.set(key, { ...seen, value: seen.value + sample.value });
          else if (fits) {
            kept.samples.set(key, { ...sample });
            this.sampleCount++;
          }
        }
      }
    }
    const endpoints = this.lastEndpoints.get(worker);
    this.lastEndpoints.delete(worker);
    if (endpoints) {
      const merged = mergeEndpoints([this.endpointsBase, endpoints]);
      // most used first (mergeEndpoints' order): the rows beyond the bound are the least used
      this.endpointsBase = { endpoints: merged.endpoints.slice(0, this.maxSamples), discovery: merged.discovery.slice(0, this.maxSamples) };
    }
  }

  /**
   * `metrics.requests` turned off by a reload: the request families (`names`) and /endpoints'
   * rows are dropped from the departed workers' counts and from the live ones' last answers (a
   * worker that dies before its next answer would carry them back), as every worker empties
   * its own. Turned on again, they count from zero everywhere.
   */
  forget(names: ReadonlySet<string>): void {
    for (const name of names) {
      this.sampleCount -= this.metricsBase.get(name)?.samples.size ?? 0;
      this.metricsBase.delete(name);
    }
    for (const [worker, families] of this.lastMetrics) this.lastMetrics.set(worker, families.filter((f) => !names.has(f.name)));
    this.lastEndpoints.clear();
    this.endpointsBase = { endpoints: [], discovery: [] };
  }

  /** The departed workers' counts as one more registry's JSON to aggregate with the live ones. */
  metrics(): MetricsJson {
    return [...this.metricsBase.values()].map(({ family, samples }) => ({ ...family, values: [...samples.values()] }) as Family);
  }

  endpoints(): WorkerEndpoints {
    return this.endpointsBase;
  }
}
