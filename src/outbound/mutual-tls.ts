// Mutual TLS toward an upstream sidecar, shared by both HTTP/2 codecs and the WebSocket tunnels:
// the workload SVID's current SecureContext (so connections opened after a rotation present the
// new certificate), ALPN, the upstream's SPIFFE ID pinned by checkServerIdentity, TLS session
// tickets resumed per endpoint. Kept apart from upstream-agent.ts, which subclasses
// http2-wrapper's Agent, so the `meshcar` codec never loads http2-wrapper.

import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { MeshcarError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { SvidMaterial } from '../identity/svid.js';
import type { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { watchPeerCertificate, withPeerCertificate } from '../tls-failures/peer-certificate.js';
import { gatedTlsConnect, gateOfDial } from '../tls-failures/gated-dial.js';
import { keepTicketOrigin, notePathVerified, noteResumed, ticketUsable } from './ticket-validity.js';
import { shutdownPending } from '../http/tunnel-reset.js';
import type { DialBudgets } from './dial-budgets.js';

const kEndpoint = Symbol('meshcar.endpoint');
/** The SVID a session socket dialled here presented at its handshake. */
const kPresented = Symbol('meshcar.presented');
// the TCP connection under a TLS socket dialled `resettable` (resetConnection)
const kTcp = Symbol('meshcar.tcp');
type ResettableSocket = TLSSocket & { [kTcp]?: net.Socket };
const realPeerX509 = tls.TLSSocket.prototype.getPeerX509Certificate;

export interface TlsConnectOptions {
  readonly identity: WorkloadIdentity;
  readonly checkServerIdentity: ReturnType<typeof verifyServerSpiffeId>;
  readonly alpn: readonly string[];
  readonly timeoutMs: number;
  readonly session?: Buffer | undefined;
  readonly onTicket?: (ticket: Buffer, socket: TLSSocket) => void;
  /**
   * Dial the TCP connection first and keep hold of it, so that resetConnection() can end it
   * with a reset (a TLS socket cannot send one itself). For the WebSocket tunnels.
   */
  readonly resettable?: boolean;
  /** What failed dials may cost per endpoint (dial-budgets.ts): the outbound passes its own. */
  readonly budgets?: DialBudgets;
}

/**
 * Dials an endpoint with mutual TLS and resolves once the handshake is done and the server's
 * SPIFFE ID checked. Shared by the HTTP/2 pool and the WebSocket tunnels.
 */
export function connectMutualTls(endpoint: UpstreamEndpoint, options: TlsConnectOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // an endpoint whose failed handshakes spent their budget is not dialled (dial-budgets.ts)
    const ticket = options.budgets?.begin(endpoint);
    if (ticket instanceof Error) return reject(ticket);
    // the TCP connection first, the TLS socket over it: only the TCP socket counts the bytes a
    // failed handshake read (what its chain may have cost), and a tunnel resets it
    const tcp = net.connect({ host: endpoint.address, port: endpoint.port, noDelay: true });
    if (ticket) options.budgets?.dialling(ticket, tcp);
    const material = options.identity.tls();
    // through a gate that judges the upstream's certificates before OpenSSL parses them
    // (tls-failures/gated-dial.ts): a crafted message held a core for seconds of one dial
    const socket: ResettableSocket = gatedTlsConnect(tcp, {
      // the ONE context of the current identity version, never built per connection
      secureContext: material.secureContext,
      ALPNProtocols: options.alpn as string[],
      // endpoints are IPs and identities are SPIFFE IDs: there is no server name to indicate
      servername: '',
      // called on a full handshake whose chain verified, with that chain: what its tickets descend from
      checkServerIdentity: (hostname, cert) => {
        const refused = notePathVerified(socket, material);
        // a path the inbound would refuse is refused here too: a dial failure, no request sent
        if (refused !== undefined) return Object.assign(new MeshcarError('upstream_identity_mismatch', `the upstream's certificate path ${refused}`), { tlsReason: 'other' as const });
        return options.checkServerIdentity(hostname, cert);
      },
      rejectUnauthorized: true,
      session: options.session,
    });
    if (options.resettable) socket[kTcp] = tcp; // its errors reach the TLS socket as well
    // the server's certificate, should the handshake fail: the failure is described with it
    watchPeerCertificate(socket);
    const onTicket = options.onTicket;
    if (onTicket) socket.on('session', (ticket: Buffer) => onTicket(ticket, socket));
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      const refused = gateRefusal(endpoint, socket);
      if (ticket) options.budgets?.end(endpoint, ticket, socket, refused !== undefined);
      reject(refused ?? withPeerCertificate(err, socket));
    };
    // which step stalled tells a host that drops SYNs (down, a firewall) from a process that
    // takes connections and never answers them (hung, half dead)
    const onTimeout = () => {
      const connected = !tcp.connecting;
      const stalled = connected ? `${endpoint.key} took the TCP connection but did not finish the TLS handshake` : `no TCP connection to ${endpoint.key}`;
      // a stalled handshake is a TLS failure (counted and in /debug/tls, as a caller's on the inbound); no connection is none
      fail(Object.assign(new Error(`${stalled} within ${options.timeoutMs} ms (the connect timeout)`), { code: 'ETIMEDOUT' }, connected ? { tlsReason: 'handshake_timeout' as const } : {}));
    };
    const onSecure = () => {
      cleanup();
      if (ticket) options.budgets?.end(endpoint, ticket);
      resolve(socket);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('secureConnect', onSecure);
      socket.off('error', fail);
    };
    socket.once('secureConnect', onSecure);
    socket.once('error', fail);
    // a bound from the dial's start, not an idle timer: bytes trickling in must not stretch it
    const timer = setTimeout(onTimeout, options.timeoutMs);
  });
}

/**
 * The error of a dial whose gate refused the upstream's certificates before OpenSSL parsed them
 * (or bytes no TLS server sends): undefined when it did not.
 */
function gateRefusal(endpoint: UpstreamEndpoint, socket: TLSSocket): MeshcarError | undefined {
  const gate = gateOfDial(socket);
  if (gate?.refusal === undefined) return undefined;
  if (gate.refusalReason === 'invalid_certificate') {
    return Object.assign(new MeshcarError('upstream_identity_mismatch', `${endpoint.key} presented certificates refused before they were parsed: ${gate.refusal}`), { tlsReason: 'invalid_certificate' as const });
  }
  return Object.assign(new MeshcarError('upstream_unavailable', `could not reach ${endpoint.key}: its TLS handshake was refused before its certificates were read: ${gate.refusal}`), { tlsReason: 'protocol' as const });
}

/**
 * Cuts a connection: a TCP reset when it was dialled `resettable`, so the far side sees an
 * abort at once; a FIN would read as a half-close there, which a tunnel's far end may sit on
 * (an upgraded connection carries half-closes through). Otherwise destroyed.
 */
export function resetConnection(socket: TLSSocket): void {
  const tcp = (socket as ResettableSocket)[kTcp];
  // not while the TLS socket's FIN is on its way (its shutdown runs on this TCP connection): shutdownPending
  if (tcp !== undefined && !tcp.destroyed && !shutdownPending(socket) && !shutdownPending(tcp)) tcp.resetAndDestroy();
  socket.destroy();
}

/** Whether a rotation between two SVIDs changed the certificate (not only the bundle). */
function certificateChanged(before: SvidMaterial, after: SvidMaterial): boolean {
  return before !== after && (before.chainPem !== after.chainPem || before.privateKeyPem !== after.privateKeyPem);
}

/**
 * Whether the session socket was dialled with a certificate a rotation has replaced since its
 * handshake: one that rotated while the peer's SETTINGS were awaited (the pool's sessions shed
 * the old certificate at a rotation, UpstreamPool.identityRotated, but this one was not adopted
 * yet, and took new requests with it to its maximum age).
 */
export function presentsOldCertificate(socket: unknown, identity: WorkloadIdentity): boolean {
  const presented = (socket as { [kPresented]?: SvidMaterial } | undefined)?.[kPresented];
  return presented !== undefined && certificateChanged(presented, identity.current());
}

/** The upstream's certificate on a session or tunnel socket made here. */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  return realPeerX509.call(socket);
}

/** The endpoint a socket made by UpstreamAgent was dialled to. */
export function endpointOfSocket(socket: unknown): UpstreamEndpoint | undefined {
  return (socket as { [kEndpoint]?: UpstreamEndpoint } | undefined)?.[kEndpoint];
}

/**
 * Dials an endpoint for an HTTP/2 session, whichever codec runs it: mutual TLS resuming the
 * endpoint's last TLS session while the upstream's certificate path it was verified with is
 * within its dates and our certificate and bundle are those it was made with (ticket-validity.ts;
 * a ticket the server refuses is forgotten, so it cannot fail the next try too), and ALPN h2 or
 * nothing.
 */
export async function dialHttp2(endpoint: UpstreamEndpoint, options: Omit<TlsConnectOptions, 'session' | 'onTicket' | 'alpn'>, tickets: Map<string, Buffer>): Promise<TLSSocket> {
  const key = endpoint.key;
  const deadline = performance.now() + options.timeoutMs;
  let socket: TLSSocket;
  for (let attempt = 1; ; attempt++) {
    const presented = options.identity.current();
    // the material connectMutualTls dials with (read in the same tick)
    const material = options.identity.tls();
    // a ticket is offered only with the material it was made with, its upstream's path within its dates
    let session = tickets.get(key);
    if (session !== undefined && !ticketUsable(session, material)) {
      tickets.delete(key);
      session = undefined;
    }
    const onTicket = (ticket: Buffer, tls: TLSSocket) => {
      keepTicketOrigin(ticket, tls, session);
      tickets.set(key, ticket);
    };
    try {
      // a dial again after a rotation has what is left of the bound (at least 1 ms: then it times out)
      const timeoutMs = attempt === 1 ? options.timeoutMs : Math.max(1, Math.round(deadline - performance.now()));
      socket = await connectMutualTls(endpoint, { ...options, timeoutMs, alpn: H2_ONLY, session, onTicket });
    } catch (err) {
      tickets.delete(key);
      throw err;
    }
    // A certificate rotated while this handshake ran: the session would carry the old one,
    // which the pool's sessions shed at a rotation (UpstreamPool.identityRotated) because the
    // callee cuts a connection when its certificate expires, streams and all. Dialled again
    // with the new one, once (a second rotation within one handshake is not worth a loop).
    if (attempt === 1 && certificateChanged(presented, options.identity.current())) {
      socket.destroy();
      tickets.delete(key);
      continue;
    }
    // a resumed session's upstream path is its ticket's (upstream-trust.ts watches it)
    noteResumed(socket, session);
    (socket as TLSSocket & { [kPresented]?: SvidMaterial })[kPresented] = presented;
    break;
  }
  if (socket.alpnProtocol !== 'h2') {
    socket.destroy();
    throw Object.assign(new MeshcarError('bad_gateway', `${key} did not negotiate HTTP/2 (ALPN ${String(socket.alpnProtocol)}), expected h2`), { tlsReason: 'protocol' as const });
  }
  return socket;
}

const H2_ONLY: readonly string[] = ['h2'];

/** Why a dial failed after its TLS handshake: the bound (TLS included) passed with no SETTINGS. */
export function settingsLate(key: string, timeoutMs: number): string {
  return `${key} sent no HTTP/2 SETTINGS within the ${timeoutMs} ms connect timeout (TLS handshake included)`;
}

/** Notes which endpoint a socket was dialled to (read back by endpointOfSocket). */
export function markEndpoint(socket: TLSSocket, endpoint: UpstreamEndpoint): void {
  (socket as TLSSocket & { [kEndpoint]?: UpstreamEndpoint })[kEndpoint] = endpoint;
}
