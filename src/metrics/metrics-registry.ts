// The Registry behind /metrics: prom-client's, except that the request families
// (request-families.ts) write their own text. prom-client's Registry.metrics() asks
// getMetricsAsString() for each family's text and formats every line's labels from get()'s
// objects at each scrape; the request families keep each series' label text from its first
// request and hand the same bytes over ready (test/metrics/metrics-registry.test.ts holds the
// two byte for byte, and checks this path is taken: the method is prom-client's, untyped).
// Default labels (setDefaultLabels) are not added to that text; meshcar sets none.

import type { Metric } from 'prom-client';
import { Registry } from './prom-parts.js';
import { Family } from './request-families.js';

interface TextOf {
  getMetricsAsString(metric: Metric): Promise<string>;
}

const promClientText = (Registry.prototype as unknown as TextOf).getMetricsAsString;

export class MetricsRegistry extends Registry<typeof Registry.PROMETHEUS_CONTENT_TYPE> {
  /** Called by metrics() for each registered family. */
  getMetricsAsString(metric: Metric): Promise<string> {
    if (metric instanceof Family && this.contentType === Registry.PROMETHEUS_CONTENT_TYPE) return Promise.resolve(metric.text());
    return promClientText.call(this, metric);
  }
}
