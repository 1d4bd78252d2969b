// Keeps web pages off the admin port. A page in a browser on the same machine can reach
// 127.0.0.1:15000 in two ways: DNS rebinding (its own name now resolves to 127.0.0.1, so the
// browser lets it read /config, /identity and /endpoints as same-origin) and a cross-site
// "simple" POST (a form, or fetch with no-cors) to /reload. Rebinding always sends the page's
// name as Host, so only known names pass; a browser always sends Origin on a cross-site POST,
// so a POST from another origin is refused. A page can still make GETs to 127.0.0.1 it cannot
// read (fetch with no-cors, <img>): each costs a render of /endpoints or an ask of every
// worker, and six of them in a loop halved the data plane's throughput (2391 → 1247 requests/s
// through a workers: 2 sidecar's outbound), so a request a browser marks as made by another
// site (Sec-Fetch-Site, sent by every current browser) is refused whatever its method, unless
// it is the user opening an admin page (a top-level navigation: a link, the address bar).
// curl, Prometheus and the kubelet send neither a foreign name (they use an IP or localhost)
// nor an Origin nor Sec-Fetch-*, so they are not affected.

import type { IncomingHttpHeaders } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { clip } from '../clip.js';

/** The host part of a Host header, lower-case; `ip` for IPv4 and bracketed IPv6 literals. */
export function parseHostHeader(value: string): { readonly host: string; readonly ip: boolean } | undefined {
  let host: string;
  let port: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close === -1) return undefined;
    host = value.slice(1, close);
    port = value.slice(close + 1);
    if (!isIPv6(host)) return undefined;
    if (!validPort(port)) return undefined;
    return { host: host.toLowerCase(), ip: true };
  }
  const colon = value.indexOf(':');
  host = colon === -1 ? value : value.slice(0, colon);
  port = colon === -1 ? '' : value.slice(colon);
  if (host === '' || !validPort(port)) return undefined;
  if (isIPv4(host)) return { host, ip: true };
  // `localhost.` is `localhost`: a trailing dot makes a name absolute, it does not change it
  return { host: host.toLowerCase().replace(/\.$/, ''), ip: false };
}

/** `''` (no port) or `:N` with N a TCP port (0 to 65535; `:99999` names no port anyone listens on). */
function validPort(port: string): boolean {
  return port === '' || (/^:\d{1,5}$/.test(port) && Number(port.slice(1)) <= 65535);
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Which requests the admin server answers; the list of names can be replaced (live reload). */
export class BrowserGuard {
  private names: ReadonlySet<string>;

  constructor(hosts: readonly string[] = []) {
    this.names = BrowserGuard.nameSet(hosts);
  }

  /** Names (besides localhost and IP literals) that may appear in Host. */
  setHosts(hosts: readonly string[]): void {
    this.names = BrowserGuard.nameSet(hosts);
  }

  private static nameSet(hosts: readonly string[]): ReadonlySet<string> {
    return new Set(['localhost', ...hosts.map((h) => h.toLowerCase().replace(/\.$/, ''))]);
  }

  /** Why the request is refused (403), or undefined when it may be answered. */
  refusal(method: string | undefined, headers: IncomingHttpHeaders): string | undefined {
    const hostHeader = headers.host;
    // No Host at all is HTTP/1.0 (Node answers 400 to HTTP/1.1 without one): browsers always
    // send Host, so such a request cannot come from a rebound name.
    if (hostHeader !== undefined && hostHeader !== '') {
      const parsed = parseHostHeader(hostHeader);
      if (parsed === undefined) return `Host ${JSON.stringify(clip(hostHeader, 256))} is not a host name or IP address`;
      if (!parsed.ip && !this.names.has(parsed.host)) {
        return `Host ${clip(parsed.host, 256)} is not one of this admin port's names (localhost, an IP address, or a name listed in admin.hosts)`;
      }
    }
    const site = headers['sec-fetch-site'];
    // same-origin: the admin's own pages (it serves none); none: the user typed the URL
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      const navigation = SAFE_METHODS.has(method ?? 'GET') && headers['sec-fetch-mode'] === 'navigate' && headers['sec-fetch-dest'] === 'document';
      if (!navigation) return `a request a web page made from another site (Sec-Fetch-Site: ${clip(String(site), 256)}) is refused; open the admin URL directly, or use curl`;
    }
    const origin = headers.origin;
    if (origin !== undefined && !SAFE_METHODS.has(method ?? 'GET')) {
      const own = hostHeader ? `http://${hostHeader}` : undefined;
      if (own === undefined || origin.toLowerCase() !== own.toLowerCase()) {
        return `a ${method} from another origin (${clip(origin, 256)}) is refused; send it without an Origin header, as curl does`;
      }
    }
    return undefined;
  }
}
