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

/** `block` without the line feeds it starts or ends with (a regex anchored at the end scans it all). */
function trimLineFeeds(block: string): string {
  let start = 0;
  let end = block.length;
  while (start < end && block.charCodeAt(start) === 10) start++;
  while (end > start && block.charCodeAt(end - 1) === 10) end--;
  return start === 0 && end === block.length ? block : block.slice(start, end);
}

/**
 * Prometheus text → OpenMetrics text, as prom-client would write it: a counter family is named
 * without `_total` while its samples keep it, no blank lines, `# EOF` at the end. Done on the
 * text because prom-client's own OpenMetrics rendering renames the shared counter objects
 * (metric.name loses `_total` for good), after which every plain-text scrape showed
 * `meshcar_requests{...}` instead of `meshcar_requests_total{...}`.
 *
 * Family by family (prom-client separates them by a blank line, and writes HELP and TYPE first):
 * only those two lines change, and a family's samples are copied in one piece, unless it is a
 * counter not named `_total` (samples renamed line by line). Line by line for every family, a
 * 10 MB page took 35 ms more than its render.
 */
export function toOpenMetrics(text: string): string {
  const out: string[] = [];
  for (const block of text.split('\n\n')) {
    const family = trimLineFeeds(block);
    if (family === '') continue;
    const help = family.indexOf('\n');
    const type = help === -1 ? -1 : family.indexOf('\n', help + 1);
    const typeLine = help === -1 ? '' : family.slice(help + 1, type === -1 ? undefined : type);
    const name = /^# TYPE (\S+) counter$/.exec(typeLine)?.[1];
    if (!family.startsWith('# HELP ') || name === undefined) {
      out.push(family);
      continue;
    }
    const samples = type === -1 ? '' : family.slice(type + 1);
    if (!name.endsWith('_total')) {
      // samples named without _total get it (prom-client's OpenMetrics counter samples end so)
      out.push(family.slice(0, type === -1 ? undefined : type), ...samples.split('\n').filter((line) => line !== '').map((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `) ? `${name}_total${line.slice(name.length)}` : line)));
      continue;
    }
    const bare = name.slice(0, -6);
    const helpLine = family.slice(0, help);
    out.push(`# HELP ${bare}${helpLine.slice(7 + name.length)}`, `# TYPE ${bare} counter`);
    if (samples !== '') out.push(samples);
  }
  return `${out.join('\n')}\n# EOF\n`;
}
