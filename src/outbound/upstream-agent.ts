// One http2-wrapper Agent per upstream: it pools HTTP/2 sessions per endpoint origin, puts a
// request on an open session while the peer's SETTINGS_MAX_CONCURRENT_STREAMS allows, and
// opens another only when every session is full. What this subclass changes, and why:
//
// - The connection is our mutual TLS: the workload SVID's current SecureContext (so sessions
//   opened after a rotation present the new certificate; open ones carry on), ALPN h2, and the
//   upstream's SPIFFE ID pinned by checkServerIdentity. The socket is handed to HTTP/2 only
//   after the handshake and the identity check, so no request byte reaches an impostor.
// - TLS session tickets are cached per endpoint in this agent only. Node skips
//   checkServerIdentity on a resumed session, which is safe here because every ticket in this
//   cache came from a handshake checked against this upstream's identity. A rotation clears
//   it, or a resumed session would present the old client certificate again.
// - http2-wrapper keeps RFC 8336 origin sets and checks each session's certificate for the
//   origin's DNS name or IP. SVIDs carry only a SPIFFE URI SAN (peers are authenticated by ID,
//   never by host name), so that check would refuse every session. We hide the X509 accessor
//   on our sockets, which makes http2-wrapper fall back to the address actually dialled: the
//   origin of the endpoint. (`peerCertificateOf` still reads the real certificate.)
// - Pool keys: http2-wrapper keys sessions by a string built from ~40 options on every
//   request; this agent serves one upstream with fixed options, so the key is constant.

import tls, { type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import http2wrapper from 'http2-wrapper';
import { MeshcarError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { watchPeerCertificate, withPeerCertificate } from '../tls-failures/peer-certificate.js';

const kEndpoint = Symbol('meshcar.endpoint');
const realPeerX509 = tls.TLSSocket.prototype.getPeerX509Certificate;

export interface UpstreamAgentOptions {
  readonly identity: WorkloadIdentity;
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly expectedId: string;
  /** Bounds TCP connect + TLS handshake. */
  readonly connectTimeoutMs: number;
  readonly endpointFor: (originHost: string) => UpstreamEndpoint | undefined;
}

export interface TlsConnectOptions {
  readonly identity: WorkloadIdentity;
  readonly checkServerIdentity: ReturnType<typeof verifyServerSpiffeId>;
  readonly alpn: readonly string[];
  readonly timeoutMs: number;
  readonly session?: Buffer | undefined;
  readonly onTicket?: (ticket: Buffer) => void;
}

/**
 * Dials an endpoint with mutual TLS and resolves once the handshake is done and the server's
 * SPIFFE ID checked. Shared by the HTTP/2 pool and the WebSocket tunnels.
 */
export function connectMutualTls(endpoint: UpstreamEndpoint, options: TlsConnectOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: endpoint.address,
      port: endpoint.port,
      // the ONE context of the current identity version, never built per connection
      secureContext: options.identity.tls().secureContext,
      ALPNProtocols: options.alpn as string[],
      // endpoints are IPs and identities are SPIFFE IDs: there is no server name to indicate
      servername: '',
      checkServerIdentity: options.checkServerIdentity,
      rejectUnauthorized: true,
      session: options.session,
    });
    socket.setNoDelay(true);
    // the server's certificate, should the handshake fail: the failure is described with it
    watchPeerCertificate(socket);
    if (options.onTicket) socket.on('session', options.onTicket);
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(withPeerCertificate(err, socket));
    };
    const onTimeout = () => fail(Object.assign(new Error(`connecting to ${endpoint.key} timed out`), { code: 'ETIMEDOUT' }));
    const onSecure = () => {
      cleanup();
      socket.setTimeout(0);
      resolve(socket);
    };
    const cleanup = () => {
      socket.off('secureConnect', onSecure);
      socket.off('error', fail);
      socket.off('timeout', onTimeout);
    };
    socket.once('secureConnect', onSecure);
    socket.once('error', fail);
    socket.setTimeout(options.timeoutMs, onTimeout);
  });
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
 * endpoint's last TLS session (a ticket the server refuses is forgotten, so it cannot fail the
 * next try too), and ALPN h2 or nothing.
 */
export async function dialHttp2(endpoint: UpstreamEndpoint, options: Omit<TlsConnectOptions, 'session' | 'onTicket' | 'alpn'>, tickets: Map<string, Buffer>): Promise<TLSSocket> {
  const key = endpoint.key;
  let socket: TLSSocket;
  try {
    socket = await connectMutualTls(endpoint, { ...options, alpn: H2_ONLY, session: tickets.get(key), onTicket: (ticket) => tickets.set(key, ticket) });
  } catch (err) {
    tickets.delete(key);
    throw err;
  }
  if (socket.alpnProtocol !== 'h2') {
    socket.destroy();
    throw Object.assign(new MeshcarError('bad_gateway', `${key} did not negotiate HTTP/2 (ALPN ${String(socket.alpnProtocol)}), expected h2`), { tlsReason: 'protocol' as const });
  }
  return socket;
}

const H2_ONLY: readonly string[] = ['h2'];

export class UpstreamAgent extends http2wrapper.Agent {
  private readonly tickets = new Map<string, Buffer>();
  private readonly tlsOptions: Omit<TlsConnectOptions, 'session' | 'onTicket' | 'alpn'>;
  private readonly endpointFor: UpstreamAgentOptions['endpointFor'];

  constructor(options: UpstreamAgentOptions) {
    // idle sessions are bounded by the session lifecycle (max age), not by a count that
    // would make round-robin over many endpoints churn connections
    super({ maxEmptySessions: Number.POSITIVE_INFINITY });
    this.endpointFor = options.endpointFor;
    this.tlsOptions = {
      identity: options.identity,
      checkServerIdentity: verifyServerSpiffeId(options.expectedId),
      timeoutMs: options.connectTimeoutMs,
    };
  }

  override normalizeOptions(): string {
    return '';
  }

  override async createConnection(origin: URL): Promise<TLSSocket> {
    const endpoint = this.endpointFor(origin.host);
    if (!endpoint) throw new MeshcarError('upstream_unavailable', `${origin.host} is no longer an endpoint`);
    const socket = await dialHttp2(endpoint, this.tlsOptions, this.tickets);
    Object.defineProperty(socket, 'getPeerX509Certificate', { value: hiddenPeerX509, configurable: true });
    (socket as TLSSocket & { [kEndpoint]?: UpstreamEndpoint })[kEndpoint] = endpoint;
    // HTTP/2 installs its own handler; this one only stops a late second error from throwing
    socket.on('error', ignore);
    return socket;
  }

  /** After a rotation: new sessions must do a full handshake with the new certificate. */
  forgetTlsSessions(endpointKey?: string): void {
    if (endpointKey === undefined) this.tickets.clear();
    else this.tickets.delete(endpointKey);
  }
}

function hiddenPeerX509(): undefined {
  return undefined;
}

function ignore(): void {}
