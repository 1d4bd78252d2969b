// Network addresses as configs write them: host:port, dns:NAME:PORT endpoints, app URLs
// (http:// or h2c://) and the CA's https:// URL. Pure parsing: each function returns the value
// or the reason the text is not one, and the config readers turn reasons into issues.

import { BlockList, isIP, isIPv4, isIPv6, SocketAddress } from 'node:net';

export interface HostPort {
  /** IPv6 hosts without brackets, as net.connect and server.listen take them. */
  readonly host: string;
  readonly port: number;
}

export interface Endpoint extends HostPort {
  /** 'dns': host is a name to re-resolve as its records change; 'static': used as written. */
  readonly kind: 'static' | 'dns';
}

export interface AppAddress extends HostPort {
  readonly protocol: 'http' | 'h2c';
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An RFC 1123 host name. An all-digit last label is a mistyped IPv4 address (999.1.1.1), not a name. */
export function isHostname(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = text.split('.');
  return labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1] as string);
}

// An upstream's name as the system resolver takes it: a host name whose labels may also hold
// underscores, as Docker's and Compose's service names (my_service, project_default) and
// SRV-style labels do. getaddrinfo does not judge names, so these resolve; certificate names
// and listeners keep to RFC 1123 (isHostname).
const LOOKUP_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A name an upstream endpoint may give: an RFC 1123 host name, underscores allowed. */
export function isLookupName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = text.split('.');
  return labels.every((label) => LOOKUP_LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1] as string);
}

/** A DNS name or an IP address (IPv6 without brackets, no zone), as certificate SANs hold them. */
export function isServerName(text: string): boolean {
  return ipAddressBytes(text) !== undefined || isHostname(text);
}

export function formatHostPort(address: HostPort): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

const MISSING_PORT = 'give a port, e.g. 127.0.0.1:8080';

/** `host:port`, `1.2.3.4:port` or `[::1]:port`. Port 0 ("any free port") only when allowed: listeners. */
export function parseHostPort(text: string, options: { allowPortZero?: boolean; lookupName?: boolean } = {}): HostPort | string {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return 'an IPv6 address needs its closing ]';
    host = text.slice(1, close);
    if (!isIPv6(host)) return `"${host}" is not an IPv6 address`;
    if (text[close + 1] !== ':') return 'give a port after the ], e.g. [::1]:8080';
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return MISSING_PORT;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') return 'give a host before the port, e.g. 0.0.0.0:8080';
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return 'give HOST:PORT, not a URL (no scheme), e.g. 127.0.0.1:8080';
    if (host.includes(':')) return 'write an IPv6 address in brackets, e.g. [::1]:8080';
    if (!isIPv4(host) && !(options.lookupName ? isLookupName(host) : isHostname(host))) return `"${host}" is neither an IPv4 address nor a host name`;
  }
  const port = parsePort(portText, options.allowPortZero ?? false);
  return typeof port === 'string' ? port : { host, port };
}

function parsePort(text: string, allowZero: boolean): number | string {
  if (!/^\d{1,5}$/.test(text)) return text === '' ? 'the port is empty' : `port "${text}" is not a number`;
  const port = Number(text);
  const min = allowZero ? 0 : 1;
  if (port < min || port > 65535) return `port ${port} is out of range (${min}-65535)`;
  return port;
}

/** The unspecified addresses and the limited broadcast one, in every spelling (`::0`, `::ffff:0.0.0.0`). */
const NOT_DIALABLE = new BlockList();
NOT_DIALABLE.addAddress('0.0.0.0', 'ipv4');
NOT_DIALABLE.addAddress('255.255.255.255', 'ipv4');
NOT_DIALABLE.addAddress('::', 'ipv6');

/**
 * Whether `address` (an IP address) is no upstream to dial: Linux takes a dial to 0.0.0.0 or ::
 * for one to this host, so such an endpoint, or a DNS answer of it (sinkhole resolvers give
 * 0.0.0.0), reaches whatever listens here on that port.
 */
export function isNotDialable(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && NOT_DIALABLE.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** An upstream endpoint: `host:port`, or `dns:NAME:PORT` for a name re-resolved as it changes. */
export function parseEndpoint(text: string): Endpoint | string {
  if (!text.startsWith('dns:')) {
    const address = parseHostPort(text, { lookupName: true });
    if (typeof address === 'string') return address;
    // a link-local address's zone (%eth0) has no place in the origin URL sessions are pooled by:
    // the outbound threw Invalid URL at start (or at the reload bringing it) from a config that passed
    if (address.host.includes('%')) return `an IPv6 address with a zone (${address.host}) cannot be an upstream endpoint: give a global or unique local address`;
    // never what a listen address copied over meant
    if (isNotDialable(address.host)) return `${address.host} is no address to dial (it means "any" to a listener, or every host of a network): give the upstream sidecar's inbound address`;
    return { kind: 'static', ...address };
  }
  // an absolute name (a trailing dot) is looked up as written, no search domain tried first:
  // how Kubernetes pods, whose resolv.conf says ndots:5, skip the three or four NXDOMAIN rounds
  // every lookup of orders.default.svc.cluster.local would otherwise make
  const rest = text.slice('dns:'.length);
  const colon = rest.lastIndexOf(':');
  const absolute = colon > 1 && rest[colon - 1] === '.' && !rest.startsWith('[');
  const address = parseHostPort(absolute ? rest.slice(0, colon - 1) + rest.slice(colon) : rest, { lookupName: true });
  // a name without its port: the example in its own form, not a bare address's
  if (address === MISSING_PORT) return 'give a port, e.g. dns:orders.default.svc.cluster.local:15443';
  if (typeof address === 'string') return address;
  if (!isLookupName(address.host)) return `dns: takes a host name, not an IP address; write ${formatHostPort(address)} instead`;
  return { kind: 'dns', ...address, host: absolute ? `${address.host}.` : address.host };
}

/** Where the sidecar reaches its own app: `http://host:port` or `h2c://host:port`, nothing more. */
export function parseAppUrl(text: string): AppAddress | string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(text);
  if (!match) return 'write http://HOST:PORT, or h2c://HOST:PORT for an HTTP/2 app';
  const scheme = (match[1] as string).toLowerCase();
  if (scheme !== 'http' && scheme !== 'h2c') {
    return `the app is reached over plain http:// or h2c://, not ${scheme}:// (the sidecar does the TLS)`;
  }
  const rest = (match[2] as string).replace(/\/$/, '');
  if (/[/?#@]/.test(rest)) return 'give only the scheme, host and port: no path, query or user';
  const address = parseHostPort(rest);
  if (typeof address === 'string') return address;
  // a zone (%lo, %eth0) has no place in the URL the app client dials by: http2.connect threw
  // Invalid URL on the first request (the sidecar died), undici's pool at start (exit 70)
  if (address.host.includes('%')) return `an IPv6 address with a zone (${address.host}) cannot be the app's address: give ::1 or the app's address without %`;
  return { protocol: scheme, ...address };
}

/**
 * A URL or address from the config as an error quotes it, its userinfo (a password, perhaps) as `***`: a
 * refused `http://app:secret@host` went whole to stderr, doctor --json and, on a refused reload,
 * the log, which is often shipped off the host.
 */
export function quotedUrl(text: string): string {
  // up to the last @, scheme or not: a password may hold / ? # (written raw, as users do)
  return JSON.stringify(text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^]*@/, (_all, scheme: string | undefined) => `${scheme ?? ''}***@`));
}

/** The CA server's URL: https, a host and optionally a port, nothing more. */
export function parseHttpsUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL; write https://HOST:PORT';
  }
  if (url.protocol !== 'https:') return `the CA is reached over https://, not ${url.protocol}//`;
  if (url.username !== '' || url.password !== '') return 'credentials do not belong in the URL';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return 'give only the scheme, host and port: no path, query or fragment';
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!isServerName(host)) return `"${host}" is neither an IP address nor a host name`;
  // the URL parser keeps port 0 as given, and the client then dialled 443 (the token going to
  // whatever listens there): refused as every other address's port 0 is
  if (url.port === '0') return 'port 0 is out of range (1-65535)';
  return url;
}

const IPV4_LOOPBACK = /^127\.\d+\.\d+\.\d+$/;

/**
 * Whether a connection to `target` may reach `listener` (a loop back into the sidecar's own
 * port): the same port and an address both may name, or a loopback address inside a wildcard
 * listener (`::` takes IPv4 too, as Node listens dual-stack). `localhost` names 127.0.0.1 and
 * ::1 (Node tries both), `::ffff:127.0.0.1` names 127.0.0.1. Addresses are compared in their
 * canonical form (canonicalHost): `[0:0:0:0:0:0:0:1]` is `[::1]`.
 */
export function reachesListener(listener: HostPort, target: HostPort): boolean {
  if (listener.port === 0 || listener.port !== target.port) return false;
  const targets = namedAddresses(target.host);
  if (sameAddress(listener.host, target.host)) return true;
  const host = canonicalHost(listener.host);
  if (host === '0.0.0.0') return targets.some((a) => IPV4_LOOPBACK.test(a));
  if (host === '::') return targets.some((a) => IPV4_LOOPBACK.test(a) || a === '::1');
  return false;
}

/** Whether two hosts as written may name one address (`localhost` and `127.0.0.1`, `::ffff:10.0.0.1` and `10.0.0.1`, `0:0::1` and `::1`). */
export function sameAddress(a: string, b: string): boolean {
  const named = namedAddresses(b);
  return namedAddresses(a).some((address) => named.includes(address));
}

/** The addresses a host as written names: its canonical form (canonicalHost); localhost's loopback addresses too. */
function namedAddresses(host: string): string[] {
  const canonical = canonicalHost(host);
  if (canonical === 'localhost' || canonical.endsWith('.localhost')) return [canonical, '127.0.0.1', '::1'];
  return [canonical];
}

/**
 * One spelling per address, so that spellings compare equal: an IPv6 address compressed and
 * lower-cased as RFC 5952 writes it (`0:0:0:0:0:0:0:1` → `::1`, `FD00::0001` → `fd00::1`), its
 * zone kept as written (interface names are case-sensitive); an IPv4-mapped one
 * (::ffff:0:0/96, in either spelling) as its IPv4 address, which is what a dial to it reaches;
 * a host name lower-cased. Comparing the text as written let `[0:0:0:0:0:0:0:1]` past the
 * self-loop check: one request went round through the sidecar hundreds of times.
 */
export function canonicalHost(host: string): string {
  if (isIPv4(host)) return host;
  if (!isIPv6(host)) return host.toLowerCase();
  const zone = host.indexOf('%');
  const bare = zone === -1 ? host : host.slice(0, zone);
  const bytes = ipAddressBytes(bare);
  if (bytes === undefined) return host.toLowerCase();
  if (bytes.subarray(0, 12).equals(IPV4_MAPPED_PREFIX)) return bytes.subarray(12).join('.');
  const text = new SocketAddress({ address: bare, family: 'ipv6' }).address;
  return zone === -1 ? text : text + host.slice(zone);
}

const IPV4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * An IP address's bytes, as an iPAddress SAN holds them: 4 for IPv4, 16 for IPv6; undefined for
 * anything else, an IPv6 address with a zone included (no certificate can name a zone: node-forge
 * encoded `fe80::1%eth0` as 17 bytes, `::1%lo` as another address).
 */
export function ipAddressBytes(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let hex = text;
  // an embedded IPv4 tail (::ffff:127.0.0.1) is the last two groups
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    hex = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const split = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const halves = hex.split('::'); // isIPv6 allows one :: at most
  const left = split(halves[0] as string);
  const right = halves.length === 2 ? split(halves[1] as string) : [];
  const groups = halves.length === 2 ? [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  if (groups.length !== 8) return undefined;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/** 127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return address === '::1';
}
