// The text format of a /metrics answer: Prometheus text as prom-client writes it, or the
// OpenMetrics text a scraper asks for with Accept: application/openmetrics-text (the sidecar's
// own registry, registry.ts, and a primary's merge of its workers' pages both answer this way).

import { Registry } from './prom-parts.js';

/**
 * Whether the scraper asked for OpenMetrics: the one thing a /metrics page depends on besides the
 * counts. Yes when an application/openmetrics-text range has a weight (q, RFC 9110 §12.4.2) above
 * 0 and at least that of any text/plain range: Prometheus sends OpenMetrics first (q=1) and
 * text/plain at q=0.5; `;q=0` refuses it; `*` ranges alone keep the Prometheus text.
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined || !accept.toLowerCase().includes('application/openmetrics-text')) return false;
  let openMetrics = 0;
  let text = 0;
  for (const range of accept.toLowerCase().split(',')) {
    const [type, ...parameters] = range.split(';').map((part) => part.trim());
    const q = parameters.find((p) => /^q\s*=/.test(p));
    const weight = q === undefined ? 1 : Number(q.slice(q.indexOf('=') + 1).trim());
    if (!Number.isFinite(weight)) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, weight);
    else if (type === 'text/plain') text = Math.max(text, weight);
  }
  return openMetrics > 0 && openMetrics >= text;
}

/** Prometheus text as the scraper asked for it: OpenMetrics for Accept: application/openmetrics-text, else as it is. */
export function negotiateMetrics(text: string, accept: string | undefined): { contentType: string; body: string } {
  if (wantsOpenMetrics(accept)) {
    return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: toOpenMetrics(text) };
  }
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: text };
}

/**
 * Prometheus text → OpenMetrics text, as prom-client would write it: a counter family is named
 * without `_total` while its samples keep it, no blank lines, `# EOF` at the end. Done on the
 * text because prom-client's own OpenMetrics rendering renames the shared counter objects
 * (metric.name loses `_total` for good), after which every plain-text scrape showed
 * `meshcar_requests{...}` instead of `meshcar_requests_total{...}`.
 */
export function toOpenMetrics(text: string): string {
  const lines = text.split('\n');
  const counters = new Set<string>();
  for (const line of lines) {
    if (line.startsWith('# TYPE ') && line.endsWith(' counter')) counters.add(line.slice(7, -8));
  }
  const out: string[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const end = line.indexOf(' ', 7);
      const name = line.slice(7, end === -1 ? undefined : end);
      if (counters.has(name) && name.endsWith('_total')) out.push(`${line.slice(0, 7)}${name.slice(0, -6)}${end === -1 ? '' : line.slice(end)}`);
      else out.push(line);
      continue;
    }
    if (!line.startsWith('#')) {
      const end = line.search(/[{ ]/);
      const name = end === -1 ? line : line.slice(0, end);
      if (counters.has(name) && !name.endsWith('_total')) {
        out.push(`${name}_total${line.slice(name.length)}`);
        continue;
      }
    }
    out.push(line);
  }
  return `${out.join('\n')}\n# EOF\n`;
}
