// The encoder's indexing policy: for each header name, whether its fields may enter the dynamic
// table, must stay out of it, or must be marked never-indexed (RFC 7541 §6.2.3, §7.1.3).
//
// - Never indexed, so that no intermediary indexes them either and no one can probe the
//   compression context for them: authorization, proxy-authorization, set-cookie, cookie values
//   shorter than 20 octets (low entropy, guessable by CRIME-style probing: the nghttp2 and
//   Firefox rule), and any name the caller adds through `sensitiveHeaders`.
// - Sent without indexing, because the value changes on every message and would only churn the
//   table: content-length, validators and dates of single resources, request and trace ids,
//   grpc-timeout; and :path when it carries a query string (otherwise, gRPC method paths and API
//   routes repeat and are worth indexing — nghttp2 never indexes :path, we do).
// - Indexed otherwise, including x-forwarded-client-cert: it holds no secret (the identity the
//   peer proved over mTLS), repeats on every request of a connection, and is long, so indexing
//   it saves the most. The encoder also refuses to index any field bigger than 3/4 of the table.

import { STATIC_FIELD_INDEX, STATIC_NAME_INDEX } from './static-table.js';

// Plain numbers rather than a const enum: test runners transpile files one by one.
export const INDEX = 0;
export const NO_INDEX = 1;
export const NEVER_INDEX = 2;
/** Never indexed when the value is shorter than 20 octets, indexed otherwise (cookie). */
export const NEVER_INDEX_IF_SHORT = 3;
/** Indexed unless the value has a query string (:path). */
export const INDEX_UNLESS_QUERY = 4;
export type Policy = typeof INDEX | typeof NO_INDEX | typeof NEVER_INDEX | typeof NEVER_INDEX_IF_SHORT | typeof INDEX_UNLESS_QUERY;

export const NEVER_INDEXED_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'set-cookie'];
export const NOT_INDEXED_HEADERS: readonly string[] = [
  'content-length', 'age', 'etag', 'if-modified-since', 'if-none-match', 'last-modified', 'location',
  'x-request-id', 'traceparent', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'b3',
  'x-amzn-trace-id', 'x-cloud-trace-context', 'grpc-timeout',
];

/** What is fixed about a name before any traffic: its policy and its static table entries. */
export interface NameTemplate {
  readonly policy: Policy;
  /** Lowest static index with this name, or 0. */
  readonly staticIndex: number;
  /** value → static index, when the static table has this name. */
  readonly staticValues: ReadonlyMap<string, number> | undefined;
}

function template(name: string, policy: Policy): NameTemplate {
  return { policy, staticIndex: STATIC_NAME_INDEX.get(name) ?? 0, staticValues: STATIC_FIELD_INDEX.get(name) };
}

/** Every name with something fixed about it; encoders copy entries lazily, on first use. */
export const NAME_TEMPLATES: ReadonlyMap<string, NameTemplate> = (() => {
  const templates = new Map<string, NameTemplate>();
  for (const name of STATIC_NAME_INDEX.keys()) templates.set(name, template(name, INDEX));
  for (const name of NOT_INDEXED_HEADERS) templates.set(name, template(name, NO_INDEX));
  for (const name of NEVER_INDEXED_HEADERS) templates.set(name, template(name, NEVER_INDEX));
  templates.set('cookie', template('cookie', NEVER_INDEX_IF_SHORT));
  templates.set(':path', template(':path', INDEX_UNLESS_QUERY));
  return templates;
})();

/** A template for a name the caller declared sensitive. */
export function sensitiveTemplate(name: string): NameTemplate {
  return template(name, NEVER_INDEX);
}

/** Must this field be sent as never indexed? */
export function isNeverIndexed(policy: Policy, value: string): boolean {
  return policy === NEVER_INDEX || (policy === NEVER_INDEX_IF_SHORT && value.length < 20);
}

/** May this field enter the dynamic table (size aside)? Never-indexed fields are decided first. */
export function mayIndex(policy: Policy, value: string): boolean {
  return policy !== NO_INDEX && (policy !== INDEX_UNLESS_QUERY || value.indexOf('?') < 0);
}
