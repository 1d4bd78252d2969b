// The metric families every request touches (meshcar_requests_total,
// meshcar_request_duration_seconds, and on the outbound meshcar_upstream_active_streams),
// built for that path: a label child is a plain object of number slots, so a request costs an
// increment and a scan of 14 bucket bounds. prom-client's own children hash their label
// object into a string on every inc() and observe() (6-10 µs a request in a profile at 1,000
// req/s). These families register in a prom-client Registry like its own metrics and get()
// returns the same shape, so /metrics, the workers' aggregation (AggregatorRegistry.aggregate)
// and promtool see the same text as before. Their text is also written here (text()), from
// label strings each child formats once: prom-client formats every line's labels anew at each
// scrape, ~2.5 µs a line, and a page of 20 callers with 100 routes each took 300 ms.

import type { Metric, Registry } from 'prom-client';

/** What get() returns: prom-client's metric object shape, read by its Registry and aggregators. */
export interface FamilySnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  readonly aggregator: 'sum';
}

interface FamilyOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** Label values to the label object Prometheus prints, in the declared order. */
function labelObject<L extends string>(names: readonly L[], values: readonly string[]): Record<L, string> {
  if (values.length !== names.length) throw new Error(`expected ${names.length} label values (${names.join(', ')}), got ${values.length}`);
  const labels = {} as Record<L, string>;
  names.forEach((name, i) => (labels[name] = values[i] as string));
  return labels;
}

/** prom-client's escaping of a HELP text, a metric name or (with quotes) a label value. */
const escapeText = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** `name="value",...` as prom-client writes a label object, in its key order. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).map(([name, value]) => `${name}="${escapeText(value).replace(/"/g, '\\"')}"`).join(',');
}

/** A sample value as prom-client writes it (util.js getValueAsString). */
function valueText(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

/** Children by their label values, joined with a byte no label value holds. */
export abstract class Family<L extends string, C> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum' as const;
  protected readonly children = new Map<string, C>();

  constructor(options: FamilyOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    // prom-client types a registrable metric as a union of its own classes; the registry
    // only reads name, type, help, aggregator, get() and reset(), which this class has
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The child for these label values; callers keep it, so this runs once per series. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.newChild(labelObject(this.labelNames, values));
      this.children.set(key, child);
      this.textBytes += this.bytesOf(child);
    }
    return child;
  }

  protected abstract newChild(labels: Record<L, string>): C;

  /** About how many bytes of /metrics text a series prints (its lines, labels and values). */
  protected abstract bytesOf(child: C): number;

  /** About how many bytes of /metrics text the series print together (the series budget's measure, traffic-metrics.ts). */
  textBytes = 0;

  /** Each series' lines, as prom-client's Registry would write them from get(). */
  protected abstract appendLines(lines: string[]): void;

  /** This family's text on /metrics: what prom-client's Registry writes from get(), byte for byte (metrics-registry.ts). */
  text(): string {
    const lines = [`# HELP ${escapeText(this.name)} ${escapeText(this.help)}`, `# TYPE ${escapeText(this.name)} ${this.type}`];
    this.appendLines(lines);
    return lines.join('\n');
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  /** Series held now. */
  get size(): number {
    return this.children.size;
  }

  /** The sample lines the series print together (the series budget's other measure). */
  get lines(): number {
    return this.children.size * this.linesPerSeries();
  }

  /** Sample lines one series prints. */
  protected linesPerSeries(): number {
    return 1;
  }

  /** Drops one series (an upstream a reload removed); a child held by a caller is dropped with it. */
  remove(...values: string[]): void {
    const key = values.join('\u0000');
    const child = this.children.get(key);
    if (child === undefined) return;
    this.children.delete(key);
    this.textBytes -= this.bytesOf(child);
  }

  /** Drops every series (metrics.requests turned off); children held by callers are dropped with them. */
  clear(): void {
    this.children.clear();
    this.textBytes = 0;
  }
}

export class RequestCounterChild<L extends string = string> {
  value = 0;
  /** `{labels} ` as the line writes them, made once. */
  readonly head: string;
  constructor(readonly labels: Readonly<Record<L, string>>) {
    const text = labelText(labels);
    this.head = text === '' ? ' ' : `{${text}} `;
  }
  inc(by = 1): void {
    this.value += by;
  }
}

export class RequestCounter<L extends string> extends Family<L, RequestCounterChild<L>> {
  readonly type: 'counter' | 'gauge' = 'counter';

  protected newChild(labels: Record<L, string>): RequestCounterChild<L> {
    return new RequestCounterChild(labels);
  }

  // the name, the labels and a value of up to 12 characters, a line feed
  protected bytesOf(child: RequestCounterChild<L>): number {
    return this.name.length + child.head.length + 13;
  }

  async get(): Promise<FamilySnapshot> {
    const values: FamilySnapshot['values'] = [];
    for (const child of this.children.values()) values.push({ labels: { ...child.labels }, value: child.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  protected appendLines(lines: string[]): void {
    const name = escapeText(this.name);
    for (const child of this.children.values()) lines.push(name + child.head + valueText(child.value));
  }

  /** Zeroes every series; children held by callers stay valid. */
  reset(): void {
    for (const child of this.children.values()) child.value = 0;
  }
}

/** A gauge moved by deltas on the request path (streams in flight): a counter that may go down. */
export class RequestGauge<L extends string> extends RequestCounter<L> {
  override readonly type = 'gauge';
}

export class RequestHistogramChild<L extends string = string> {
  /** Observations per bucket, not cumulative (the scrape adds them up). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** The labels as the lines write them (`le` comes before them on a bucket's), made once. */
  readonly text: string;
  constructor(readonly labels: Readonly<Record<L, string>>, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
    this.text = labelText(labels);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

export class RequestHistogram<L extends string> extends Family<L, RequestHistogramChild<L>> {
  readonly type = 'histogram' as const;
  readonly bounds: readonly number[];

  constructor(options: FamilyOptions<L> & { readonly buckets: readonly number[] }) {
    super(options);
    this.bounds = [...options.buckets].sort((a, b) => a - b);
  }

  // its buckets, +Inf, _sum and _count
  protected override linesPerSeries(): number {
    return this.bounds.length + 3;
  }

  protected newChild(labels: Record<L, string>): RequestHistogramChild<L> {
    return new RequestHistogramChild(labels, this.bounds);
  }

  // each bucket's line (`_bucket{le="0.0025",` and the labels), +Inf's, _sum's and _count's
  protected bytesOf(child: RequestHistogramChild<L>): number {
    const line = this.name.length + child.text.length + 16;
    return (this.bounds.length + 1) * (line + 16) + 2 * (line + 8);
  }

  /** prom-client's histogram shape: cumulative `_bucket` series with `le` first, then `_sum` and `_count`. */
  async get(): Promise<FamilySnapshot> {
    const values: FamilySnapshot['values'] = [];
    const bucket = `${this.name}_bucket`;
    for (const child of this.children.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += child.counts[i] as number;
        values.push({ labels: { le, ...child.labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', ...child.labels }, value: child.count, metricName: bucket });
      values.push({ labels: { ...child.labels }, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...child.labels }, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  protected appendLines(lines: string[]): void {
    const name = escapeText(this.name);
    const buckets = [...this.bounds.map((le) => `${name}_bucket{le="${le}"`), `${name}_bucket{le="+Inf"`];
    for (const child of this.children.values()) {
      const rest = child.text === '' ? '} ' : `,${child.text}} `;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += child.counts[i] as number;
        lines.push(buckets[i] + rest + valueText(cumulative));
      }
      lines.push(buckets[this.bounds.length] + rest + valueText(child.count));
      const plain = child.text === '' ? ' ' : `{${child.text}} `;
      lines.push(`${name}_sum${plain}${valueText(child.sum)}`, `${name}_count${plain}${valueText(child.count)}`);
    }
  }

  reset(): void {
    for (const child of this.children.values()) {
      child.counts.fill(0);
      child.sum = 0;
      child.count = 0;
    }
  }
}
