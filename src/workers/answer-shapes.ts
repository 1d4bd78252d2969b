// The shapes the primary takes from its workers (workers > 1): each message and each answer
// to an ask is checked before the primary holds it, renders it or keeps it for a dead
// worker's counts. A worker is our own code, but a bug in one must cost that one answer, not
// the primary: a GET /endpoints answer without its lists was kept as the worker's last counts
// and merged when the worker died, in the primary's 'exit' listener, where the TypeError ended
// the primary (and with it every worker); a BigInt port in a second worker's 'listening'
// ended it in JSON.stringify. Sizes are bounded too, as a worker's registry caps its series
// (a message is read whole before it can be looked at: the bounds keep it from being held,
// rendered and sent on; what one message costs to read is Node's channel's to bound, and it
// does not).

import type { Ask } from './messages.js';

/**
 * At most this many samples in one worker's metrics answer. A worker's series budget
 * (traffic-metrics.ts: about 100,000 lines and 12 MiB of the request families) keeps it below
 * this and MAX_ANSWER_TEXT; the primary aggregates the answers on its event loop: 450,000
 * samples a worker took 7 s and 2.1 GB per page with 2 workers (the review of a raise to
 * 1,000,000). Past it the answer is refused and the refusal logged (primary.ts).
 */
export const MAX_METRIC_SAMPLES = 200_000;
/** At most this many rows in one worker's /endpoints answer (its route and peer caps keep it far below). */
export const MAX_ENDPOINT_ROWS = 200_000;
/** At most this many characters of names and label text in one metrics or /endpoints answer. */
const MAX_ANSWER_TEXT = 16 * 1024 * 1024;
/** A worker keeps its last 100 failed handshakes (TLS_FAILURES_KEPT); a few more are not refused. */
const MAX_TLS_ENTRIES = 1_000;
/** Of their text: a few hundred bytes each (a peer's name, a reason, a message); what is shown is sent on as JSON. */
const MAX_TLS_TEXT = 1024 * 1024;
/** Upstreams in one GET /upstreams answer (a config names far fewer). */
const MAX_UPSTREAMS = 10_000;
/** Addresses in one answer, all upstreams together (what names resolve to: a few each). */
const MAX_UPSTREAM_ADDRESSES = 100_000;
/** Of its text (names, endpoints, addresses, a lookup error each): what the primary sends on as JSON. */
const MAX_UPSTREAMS_TEXT = 4 * 1024 * 1024;
/** A status's serial: a certificate serial in hex (at most 20 bytes: RFC 5280 §4.1.2.2). */
const MAX_SERIAL_TEXT = 64;

/** prom-client's aggregators (metricAggregators.js): an own name, not one a plain object inherits. */
const AGGREGATORS = new Set<unknown>(['sum', 'first', 'min', 'max', 'average', 'omit']);

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isText = (value: unknown): value is string => typeof value === 'string';
const optional = (value: unknown, check: (v: unknown) => boolean): boolean => value === undefined || check(value);
/** An OpenAPI response key of a discovery row: "404", "2XX" or "default" (status-labels.ts responseKey). */
const isResponseKey = (value: unknown): value is string => typeof value === 'string' && /^(?:[1-5](?:\d\d|XX)|default)$/.test(value);

/** Why `answer` is not what a worker answers to `ask`, or undefined if it is. */
export function answerRefusal(ask: Ask['ask'], answer: unknown): string | undefined {
  switch (ask) {
    case 'metrics':
      return metricsRefusal(answer);
    case 'endpoints':
      return endpointsRefusal(answer);
    case 'status':
      return statusRefusal(answer);
    case 'tls':
      return tlsRefusal(answer);
    case 'upstreams':
      return upstreamsRefusal(answer);
    default:
      // ping, prepare, commit: the reload round reads what it needs and refuses the rest itself
      return undefined;
  }
}

/** Why a metrics answer is not a registry's JSON of a sane size, or undefined if it is. */
function metricsRefusal(answer: unknown): string | undefined {
  if (!Array.isArray(answer)) return 'something other than a list of families';
  let samples = 0;
  let text = 0;
  for (const family of answer as unknown[]) {
    if (!isObject(family) || !isText(family.name) || !isText(family.type) || !Array.isArray(family.values)) return 'a family that is not one';
    // prom-client's aggregation throws on an aggregator it does not know (a registry's JSON
    // always names one): the whole page would fail, for every worker's counts
    if (!AGGREGATORS.has(family.aggregator)) return 'a family without a known aggregator';
    text += family.name.length + (isText(family.help) ? family.help.length : 0);
    samples += family.values.length;
    if (samples > MAX_METRIC_SAMPLES) return `more than ${MAX_METRIC_SAMPLES} samples`;
    for (const value of family.values as unknown[]) {
      if (!isObject(value) || typeof value.value !== 'number' || !isObject(value.labels) || !optional(value.metricName, isText)) return 'a sample that is not one';
      for (const [name, label] of Object.entries(value.labels)) {
        if (!isText(label) && !isCount(label)) return 'a label that is neither text nor a number';
        text += name.length + String(label).length;
      }
      if (isText(value.metricName)) text += value.metricName.length;
    }
    if (text > MAX_ANSWER_TEXT) return `more than ${MAX_ANSWER_TEXT / (1024 * 1024)} MB of names and labels`;
  }
  return undefined;
}

/** A row's (direction, peer, method, route): the key rows are merged by; its text length. */
function keyText(row: Fields): number | undefined {
  const parts = [row.direction, row.peer, row.method, row.route];
  return parts.every(isText) ? parts.reduce((sum, p) => sum + p.length, 0) : undefined;
}

function endpointsRefusal(answer: unknown): string | undefined {
  if (!isObject(answer) || !Array.isArray(answer.endpoints) || !Array.isArray(answer.discovery)) return 'something other than {endpoints: [...], discovery: [...]}';
  if (answer.endpoints.length + answer.discovery.length > MAX_ENDPOINT_ROWS) return `more than ${MAX_ENDPOINT_ROWS} rows`;
  let text = 0;
  for (const row of answer.endpoints as unknown[]) {
    const key = isObject(row) ? keyText(row) : undefined;
    if (!isObject(row) || key === undefined || !isCount(row.count) || !isCount(row.errors) || !isText(row.lastSeen) || !optional(row.violations, isCount) || !optional(row.documented, (d) => typeof d === 'boolean')) return 'an endpoint row that is not one';
    text += key + row.lastSeen.length;
  }
  for (const row of answer.discovery as unknown[]) {
    const key = isObject(row) ? keyText(row) : undefined;
    if (!isObject(row) || key === undefined || !isCount(row.count) || !Array.isArray(row.responses) || !row.responses.every(isResponseKey) || !optional(row.documented, (d) => typeof d === 'boolean')) return 'a discovery row that is not one';
    text += key + row.responses.length * 8;
  }
  return text > MAX_ANSWER_TEXT ? `more than ${MAX_ANSWER_TEXT / (1024 * 1024)} MB of rows` : undefined;
}

function statusRefusal(answer: unknown): string | undefined {
  if (!isObject(answer) || !isCount(answer.pid) || !isCount(answer.requests)) return 'a status that is not one';
  if (!(answer.serial === null || (isText(answer.serial) && answer.serial.length <= MAX_SERIAL_TEXT)) || !(answer.generation === null || isCount(answer.generation))) return 'a status that is not one';
  return undefined;
}

function tlsRefusal(answer: unknown): string | undefined {
  if (!Array.isArray(answer)) return 'something other than a list of failed handshakes';
  if (answer.length > MAX_TLS_ENTRIES) return `more than ${MAX_TLS_ENTRIES} failed handshakes`;
  const fields = ['time', 'direction', 'peer', 'reason', 'message'] as const;
  if (!(answer as unknown[]).every((entry) => isObject(entry) && fields.every((f) => isText(entry[f])))) return 'a failed handshake that is not one';
  // a 200 MB text in one entry was rendered into GET /debug/tls whole (the primary at 1.3 GB)
  const text = (answer as Fields[]).reduce((sum, entry) => sum + fields.reduce((n, f) => n + (entry[f] as string).length, 0), 0);
  return text > MAX_TLS_TEXT ? `more than ${MAX_TLS_TEXT / (1024 * 1024)} MB of failed handshakes` : undefined;
}

const STATES = new Set<unknown>(['ok', 'down', 'ejected']);

/** Why a GET /upstreams answer is not a list of upstream views of a sane size (upstreams-view.ts), or undefined. */
function upstreamsRefusal(answer: unknown): string | undefined {
  if (!Array.isArray(answer)) return 'something other than a list of upstreams';
  if (answer.length > MAX_UPSTREAMS) return `more than ${MAX_UPSTREAMS} upstreams`;
  let addresses = 0;
  let text = 0;
  for (const u of answer as unknown[]) {
    if (!isObject(u) || !isText(u.name) || !Array.isArray(u.endpoints) || !u.endpoints.every(isText) || !Array.isArray(u.addresses)) return 'an upstream that is not one';
    const failure = u.lastLookupFailure;
    if (failure !== undefined && !(isObject(failure) && isText(failure.host) && isText(failure.message) && isText(failure.time) && typeof failure.failingNow === 'boolean')) return 'a lookup failure that is not one';
    text += u.name.length + (u.endpoints as string[]).reduce((n, e) => n + e.length, 0) + (isObject(failure) ? (failure.host as string).length + (failure.message as string).length + (failure.time as string).length : 0);
    addresses += u.addresses.length;
    if (addresses > MAX_UPSTREAM_ADDRESSES) return `more than ${MAX_UPSTREAM_ADDRESSES} addresses`;
    for (const a of u.addresses as unknown[]) {
      if (!isObject(a) || !isText(a.address) || !STATES.has(a.state) || !isCount(a.failures) || !isCount(a.sessions) || !isCount(a.streams)) return 'an address that is not one';
      if (!optional(a.downUntil, isText) || !optional(a.ejectedUntil, isText)) return 'an address that is not one';
      text += a.address.length + (isText(a.downUntil) ? a.downUntil.length : 0) + (isText(a.ejectedUntil) ? a.ejectedUntil.length : 0);
    }
    if (text > MAX_UPSTREAMS_TEXT) return `more than ${MAX_UPSTREAMS_TEXT / (1024 * 1024)} MB of upstreams`;
  }
  return undefined;
}
