// The status labels of the request families: `code` on meshcar_requests_total and the class on
// meshcar_request_duration_seconds. An app (or a remote service, seen from the outbound) may
// answer with any three digits; each new one would be a new series per endpoint, up to ~900.
// So `code` is the status itself only for the codes HTTP registers (RFC 9110 and the IANA
// registry) and 499, which nginx and Envoy use for a caller that went away; any other status
// is labelled by its class ("2xx", … "5xx"), and one outside 100–599 by "other". The discovery
// document lists answers the same way, as OpenAPI response keys ("404", "2XX", "default").

const REGISTERED = new Set<number>([
  100, 101, 102, 103,
  200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
  300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 499,
  500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** The status class: "1xx" … "5xx", or "other" outside 100–599. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** Whether HTTP registers `status` (its `code` label is the status itself). */
export function isRegisteredStatus(status: number): boolean {
  return REGISTERED.has(status);
}

/** The `code` label: a registered status as it is, else its class (bounded cardinality). */
export function codeLabel(status: number): string {
  return REGISTERED.has(status) ? String(status) : statusClass(status);
}

/** The OpenAPI response key of a `code` label: "404" as it is, a class as a range ("2XX"), "other" as "default" (OpenAPI has no key for 600–999). */
export function responseKey(code: string): string {
  if (code === 'other') return 'default';
  return code.endsWith('xx') ? code.toUpperCase() : code;
}
