// doctor's upstream checks: every endpoint of every outbound upstream (host names, dns: or not,
// resolved to each address), dialled as the sidecar would: TCP, TLS with our SVID, the peer's SPIFFE ID
// against the upstream's `identity`, ALPN h2, and an HTTP/2 PING round trip. Before the first
// start (no SVID yet, the token will get one) the endpoints are still dialled, without a client
// certificate: the peer's certificate, SPIFFE ID and ALPN come before the server asks for ours,
// so a wrong endpoint shows before the sidecar starts, not in its first failed call. A dial gets
// the probes' bound (3 s, or --timeout), or the sidecar's own dial bound when that is shorter.

import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { formatHostPort } from '../config/address.js';
import { usableFamilies } from '../outbound/address-families.js';
import type { SidecarConfig, UpstreamConfig } from '../config/sidecar-config.js';
import type { Svid } from '../identity/svid.js';
import { fail, ok, skip, type CheckResult } from './result.js';
import { defaultProbeBound, dialTls, http2Ping, networkProblem, peerSpiffeId, refusedAfterHandshake, type ProbeBound } from './probe.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../config/fields.js';
import { readCheckedFile } from './read-file.js';
import { doctorLookups } from './child-lookups.js';

/** What to do about a failed dial: every ✗ says, as the docs promise. */
function dialFix(problem: string, upstream: string): string {
  const endpoints = `outbound.upstreams.${upstream}.endpoints`;
  if (/ECONNREFUSED/.test(problem)) return `start the ${upstream} sidecar, or correct ${endpoints}`;
  if (/not from a CA in our bundle/.test(problem)) return `the endpoint is not a sidecar of this mesh (or of another CA): correct ${endpoints}, or give both sides the same CA bundle`;
  if (/does not speak TLS/.test(problem)) return `the endpoint is not a meshcar inbound listener (maybe the app's own port): correct ${endpoints}`;
  if (/the sidecar's bound for this dial/.test(problem)) return `that sidecar is hung or overloaded (run meshcar doctor on it), or the bound is too short for this network: raise outbound.upstreams.${upstream}.connectTimeout`;
  if (/expired|not valid yet/.test(problem)) return 'that sidecar is not renewing (is its CA reachable?), or a clock is wrong: run meshcar doctor on it';
  return `check what listens there (ss -ltnp on its host); ${endpoints} must name meshcar inbound listeners`;
}

/**
 * An endpoint's dial is bounded as the sidecar bounds it (min(connectTimeout, a non-zero
 * timeout)) when that is shorter than the probes' bound: a peer too slow for the sidecar's
 * dial is too slow, whatever doctor would wait.
 */
function dialBound(upstream: UpstreamConfig): ProbeBound {
  const probes = defaultProbeBound();
  const connectMs = upstream.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const sidecarMs = upstream.timeoutMs === 0 ? connectMs : Math.min(connectMs, upstream.timeoutMs);
  if (sidecarMs >= probes.ms) return probes;
  const key = connectMs <= sidecarMs ? 'connectTimeout' : 'timeout';
  return { ms: sidecarMs, why: `outbound.upstreams.${upstream.name}.${key}, the sidecar's bound for this dial` };
}

/** What the dial proves the peer with: our SVID (mutual TLS), or before the first start only the bundle. */
type Credentials = { readonly svid: Svid } | { readonly bundlePem: string };

async function checkAddress(upstream: UpstreamConfig, label: string, host: string, port: number, creds: Credentials): Promise<CheckResult> {
  const name = `upstream ${upstream.name} ${label}`;
  const svid = 'svid' in creds ? creds.svid : undefined;
  let socket: TLSSocket;
  try {
    socket = await dialTls({ host, port, ca: svid ? svid.bundlePem : (creds as { bundlePem: string }).bundlePem, ...(svid ? { cert: svid.chainPem, key: svid.privateKeyPem } : {}), alpn: ['h2'], bound: dialBound(upstream) });
  } catch (err) {
    const problem = networkProblem(err);
    return fail(name, problem, dialFix(problem, upstream.name));
  }
  try {
    const peer = peerSpiffeId(socket);
    if ('problem' in peer) return fail(name, `not a meshcar sidecar: ${peer.problem}`, `correct outbound.upstreams.${upstream.name}.endpoints`);
    if (peer.id !== upstream.identity) {
      return fail(name, `peer is ${peer.id}, expected ${upstream.identity}`, `the endpoint serves another service: correct outbound.upstreams.${upstream.name}.endpoints or .identity`);
    }
    if (socket.alpnProtocol !== 'h2') return fail(name, `${peer.id} did not agree to HTTP/2 (ALPN ${socket.alpnProtocol || 'none'}), expected h2`, 'the endpoint is not a meshcar inbound listener');
    // with no certificate to show, the peer refuses us now: what it showed is all there is to see
    if (!svid) return ok(name, `${peer.id}, TLS ${socket.getProtocol() ?? ''}, ALPN h2; its side only: no SVID yet, so mutual TLS and PING are checked once the sidecar has one`);
    const refused = await refusedAfterHandshake(socket);
    if (refused) return fail(name, `${peer.id} refused our certificate after the handshake: ${networkProblem(refused)}`, 'both sidecars must trust the same CA (bundle) and trust domain');
    const rtt = await http2Ping(`https://${formatHostPort({ host, port })}`, socket);
    return ok(name, `${peer.id}, mutual TLS ${socket.getProtocol() ?? ''}, ALPN h2, PING ${rtt.toFixed(2)} ms`);
  } catch (err) {
    const problem = networkProblem(err);
    return fail(name, problem, dialFix(problem, upstream.name));
  } finally {
    socket.destroy();
  }
}

/**
 * `firstStart`: no usable SVID on disk and nothing wrong with that (the identity check's `-`, or
 * `!` for one expired, which the token replaces): the endpoints are dialled with
 * identity.ca.bundle alone.
 */
export async function checkUpstreams(config: SidecarConfig, svid: Svid | undefined, firstStart = false): Promise<CheckResult[]> {
  const upstreams = config.outbound?.upstreams ?? [];
  const bundlePem = !svid && firstStart && config.identity.source === 'ca' ? await readCheckedFile(config.identity.ca.bundle).catch(() => undefined) : undefined;
  const creds: Credentials | undefined = svid ? { svid } : bundlePem !== undefined ? { bundlePem } : undefined;
  const probes: Array<Promise<CheckResult[]>> = [];
  for (const upstream of upstreams) {
    for (const endpoint of upstream.endpoints) {
      const label = endpoint.kind === 'dns' ? `dns:${endpoint.host}:${endpoint.port}` : formatHostPort(endpoint);
      if (!creds) {
        probes.push(Promise.resolve([skip(`upstream ${upstream.name} ${label}`, 'not checked: no usable SVID to handshake with (see identity)')]));
        continue;
      }
      // a NAME:PORT written without dns: is a name the sidecar resolves to every address all
      // the same (endpoints.ts): each is checked, not whichever one a dial by name reached
      if (isIP(endpoint.host) !== 0) {
        probes.push(checkAddress(upstream, label, endpoint.host, endpoint.port, creds).then((r) => [r]));
        continue;
      }
      probes.push(
        doctorLookups.lookup(endpoint.host).then(
          (addresses) => {
            // as the sidecar does (address-families.ts): an address of a family this host has
            // none of is left out there, so it is not dialled here (a ✗ EADDRNOTAVAIL for an AAAA
            // answer on a host without IPv6 blamed an endpoint the sidecar never uses)
            const families = usableFamilies();
            return Promise.all(
              addresses.map((a) => {
                const where = `${label} → ${formatHostPort({ host: a.address, port: endpoint.port })}`;
                if (!families.has(a.family as 4 | 6)) return skip(`upstream ${upstream.name} ${where}`, `not checked: this host has no IPv${a.family} address, and the sidecar leaves this address out`);
                return checkAddress(upstream, where, a.address, endpoint.port, creds);
              }),
            );
          },
          (err: unknown) => [fail(`upstream ${upstream.name} ${label}`, networkProblem(err), 'check the DNS name (it is resolved again every outbound.dnsRefresh)')],
        ),
      );
    }
  }
  return (await Promise.all(probes)).flat();
}
