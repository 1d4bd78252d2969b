// The authority grammar both sidecars hold a request's Host, :authority or absolute-form
// authority to, written once: RFC 3986 §3.2.2-3 as RFC 9110 §4.2.1 has http URIs use it. A host
// is a reg-name (which IPv4 addresses are spelled as), or an IPv6 address in brackets; a port,
// if any, is digits naming 1-65535. What passes names one host to every reader: the outbound
// routes by the name and sends the whole upstream, the inbound passes it to the app, and apps,
// proxies and URL parsers each read a malformed one (`[a]:80`, `::1:80`, `a:99999`) their own way.

import { isIPv6 } from 'node:net';

/**
 * RFC 3986's reg-name: unreserved, sub-delims and percent-encodings (checked apart). No `:`
 * (that starts the port), no `@` (userinfo: RFC 9113 §8.3.1 forbids it in :authority), no space,
 * slash, `?`, `#` or bracket.
 */
const REG_NAME = /^[A-Za-z0-9\-._~%!$&'()*+,;=]+$/;

/** A `%` not followed by two hex digits: no percent-encoding, so no reg-name. */
const STRAY_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/**
 * Why `authority` is not a host with an optional port, in words its sender can act on, or
 * undefined. Empty passes (an HTTP/1.1 request whose target has no authority sends an empty
 * Host); each caller decides what an empty one means to it.
 */
export function authoritySyntaxProblem(authority: string): string | undefined {
  if (authority === '') return undefined;
  let port: string | undefined;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    if (close === -1) return 'its [ has no closing ]';
    const literal = authority.slice(1, close);
    // Node's isIPv6 takes a zone id (`fe80::1%eth0`): it names an interface of the sender's own
    // host, meaningless to any other (RFC 9110 §4.2.1 has no place for RFC 6874's %25 form)
    if (literal.indexOf('%') !== -1) return 'an IPv6 zone id (%25...) names an interface of the sender, not a host';
    // IPvFuture (`[v1.x]`) and anything else in brackets: no HTTP client sends them
    if (!isIPv6(literal)) return `${JSON.stringify(literal)} in brackets is not an IPv6 address`;
    const rest = authority.slice(close + 1);
    if (rest !== '') {
      if (rest.charCodeAt(0) !== 58 /* : */) return 'only a :port may follow the ]';
      port = rest.slice(1);
    }
  } else {
    const colon = authority.indexOf(':');
    const host = colon === -1 ? authority : authority.slice(0, colon);
    if (colon !== -1) port = authority.slice(colon + 1);
    // `::1:80`: which colon starts the port is anyone's guess (routing read the last one)
    if (port !== undefined && port.indexOf(':') !== -1) return 'it holds more than one : outside brackets (an IPv6 address goes in brackets: [::1]:8080)';
    // RFC 9110 §4.2.1: an http URI with an empty host is invalid
    if (host === '') return 'it names no host before the port';
    if (!REG_NAME.test(host)) return 'its host holds a character no host name, IPv4 or bracketed IPv6 address holds';
    if (host.indexOf('%') !== -1 && STRAY_PERCENT.test(host)) return 'its host holds a % not followed by two hex digits';
  }
  // RFC 3986 allows an empty port (`orders:`), read as none
  if (port === undefined || port === '') return undefined;
  if (!/^\d+$/.test(port)) return `its port ${JSON.stringify(port)} is not digits`;
  // port 0 is no port anything listens on; more than 65535 wraps or fails in whatever reads it
  const value = Number(port);
  if (value === 0 || value > 65535) return `its port ${port} is not one of 1-65535`;
  return undefined;
}

/**
 * Why the caller's authority cannot be passed on, or undefined. An HTTP/2 request's Host must
 * name what its :authority names (RFC 9113 §8.3.1: otherwise malformed), or the app (which
 * reads Host) and the caller would mean two different sites.
 */
export function authorityProblem(authority: string | undefined, host: string | string[] | undefined): string | undefined {
  const authorityWrong = authority === undefined ? undefined : authoritySyntaxProblem(authority);
  if (authorityWrong !== undefined) return `the request's authority ${JSON.stringify(authority)} is not a host with an optional numeric port: ${authorityWrong}`;
  if (host === undefined || host === authority) return undefined;
  if (typeof host !== 'string') return 'the request has more than one Host header';
  const hostWrong = authoritySyntaxProblem(host);
  if (hostWrong !== undefined) return `the request's Host ${JSON.stringify(host)} is not a host with an optional numeric port: ${hostWrong}`;
  if (authority !== undefined && httpsSite(host) !== httpsSite(authority)) return `the request's Host (${host}) and :authority (${authority}) differ`;
  return undefined;
}

/**
 * An https authority as RFC 3986 §6.2.3 normalizes it before two are compared (RFC 9113 §8.3.1
 * asks a server other than the origin to): the host lower-cased, an empty port or the scheme's
 * default (443) dropped. `orders:443` and `Orders` are one site; `orders:8443` is another. Only
 * the inbound compares (a caller's Host against its :authority), and it speaks TLS only.
 */
function httpsSite(authority: string): string {
  const lower = authority.toLowerCase();
  if (lower.endsWith(':')) return lower.slice(0, -1);
  return lower.endsWith(':443') ? lower.slice(0, -4) : lower;
}

/**
 * The inbound's own rule on top, for HTTP/2: a request must name the site it is for (RFC 9110
 * §4.2.2: an https URI with an empty host is invalid). With neither :authority nor Host the app
 * would be handed a Host the caller never sent (its own address, as the app client fills it
 * in); the node codec already resets such a stream, this makes it a 400 on both. HTTP/1.1 has
 * its own rules (host-field.ts), and an HTTP/1.0 request without Host is still served.
 */
export function namesNoSite(authority: string | undefined, host: string | string[] | undefined): string | undefined {
  if ((authority === undefined || authority === '') && (host === undefined || host === '')) return 'the request names no host: send :authority (HTTP/2) or Host (HTTP/1.1) with the site it is for';
  return undefined;
}
