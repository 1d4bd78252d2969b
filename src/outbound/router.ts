// Which upstream an app request is for: the host the app wrote (Host, :authority, or the
// authority of an absolute-form URI), port left off, matched case-insensitively against the
// configured names. The table is a Map built once; the common case (the app writes the name
// exactly as configured, no port) is a single lookup with no string work.

import { authorityProblem } from '../http/authority.js';

import { targetShapeProblem, type RequestTarget } from '../http/absolute-form.js';
export { parseRequestTarget, type RequestTarget } from '../http/absolute-form.js';

/** How many upstream names a no_route answer lists: enough for a typo, not a page of them. */
const NAMES_LISTED = 10;

export class UpstreamRouter<T> {
  private readonly byName = new Map<string, T>();
  private readonly names: string[] = [];

  constructor(entries: Iterable<readonly [name: string, value: T]>) {
    for (const [name, value] of entries) {
      this.byName.set(name.toLowerCase(), value);
      this.names.push(name);
    }
  }

  /**
   * The no_route message for a host name (as hostName gives it) that names no upstream, with the
   * names that would route: the app's owner sees the typo or the missing upstream without
   * reading the sidecar's config.
   */
  noRouteMessage(name: string): string {
    const listed = this.names.slice(0, NAMES_LISTED).join(', ');
    const more = this.names.length > NAMES_LISTED ? ` and ${this.names.length - NAMES_LISTED} more` : '';
    const choice = this.names.length === 0 ? 'this sidecar has no upstream' : `send Host: <upstream>, one of ${listed}${more}`;
    return `no upstream is named ${JSON.stringify(name)}: ${choice}`;
  }

  /** The upstream for a Host / :authority value, or undefined (-> no_route). */
  lookup(host: string | undefined): T | undefined {
    if (host === undefined || host === '') return undefined;
    return this.byName.get(host) ?? this.byName.get(hostName(host));
  }

  get size(): number {
    return this.byName.size;
  }
}

/**
 * `Payments:8080` → `payments`; `[::1]:80` → `::1`; a trailing root dot is dropped. It reads
 * brackets and port without judging them: an authority is checked (routableAuthorityProblem)
 * before the name it gives routes anything.
 */
export function hostName(authority: string): string {
  let host = authority;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    host = close === -1 ? host.slice(1) : host.slice(1, close);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

/**
 * Why the app's authority (Host, or an absolute-form target's) cannot be routed and passed on,
 * or undefined: the grammar the inbound holds callers to (authority.ts: a name, an IPv4 address
 * or a bracketed IPv6 one, a port of 1-65535). Routing reads the name before the port, brackets
 * stripped, so `orders:1/../x`, `orders:abc` or `[orders]:80` would otherwise reach `orders`
 * with an :authority its peer refuses (a reset held against the endpoint) or its app reads as
 * it likes.
 */
export function routableAuthorityProblem(authority: string | undefined): string | undefined {
  if (authority === undefined || authority === '') return undefined; // no host: routing says so
  return authorityProblem(authority, undefined);
}

/**
 * routableAuthorityProblem for an HTTP/1.1 request's `authority` (its target's, else Host),
 * refused outright when the target held userinfo or named no host (`GET http:///x`, a 400, not
 * the 404 of a request that names no upstream).
 */
export function targetAuthorityProblem(target: RequestTarget, authority: string | undefined): string | undefined {
  return targetShapeProblem(target) ?? routableAuthorityProblem(authority);
}

/**
 * Why a request target (as parseRequestTarget leaves it) cannot go upstream as HTTP/2's :path,
 * or undefined: it must be a path, or `*` for OPTIONS alone (RFC 9110 §7.1; RFC 9113 §8.3.1).
 * The peer's codec resets anything else (`GET *`, `GET ftp://payments/x`), a reset the attempt
 * retried and held against the endpoint toward ejection; so it is the app's 400, sent nowhere.
 * A `#` anywhere is refused too: a fragment is never part of a request target (RFC 9112 §3.2;
 * an absolute URI's is cut off by parseRequestTarget, as a client would), a meshcar inbound
 * refuses it, and an app that parses the target as a URL drops it and all after it.
 */
export function targetFormProblem(method: string, path: string): string | undefined {
  if (path.charCodeAt(0) === 47 /* / */) return path.indexOf('#') === -1 ? undefined : 'the request target holds a # (a fragment is never sent; RFC 9112 §3.2)';
  if (path === '*') return method === 'OPTIONS' ? undefined : 'the request target * is for OPTIONS only';
  return 'the request target must be a path (/...), an http:// or https:// URI, or * for OPTIONS';
}

/** The path without its query string, for metrics and logs (never label a query). */
export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
