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
//   origin of the endpoint. (`peerCertificateOf` in mutual-tls.ts still reads the real one.)
// - Loaded only with the `node` codec, when the outbound starts (node-codec.ts).
// - Pool keys: http2-wrapper keys sessions by a string built from ~40 options on every
//   request; this agent serves one upstream with fixed options, so the key is constant.

import type { TLSSocket } from 'node:tls';
import http2wrapper from 'http2-wrapper';
import { MeshcarError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { dialHttp2, markEndpoint, type TlsConnectOptions } from './mutual-tls.js';

export interface UpstreamAgentOptions {
  readonly identity: WorkloadIdentity;
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly expectedId: string;
  /** Bounds TCP connect + TLS handshake. */
  readonly connectTimeoutMs: number;
  readonly endpointFor: (originHost: string) => UpstreamEndpoint | undefined;
}

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
    markEndpoint(socket, endpoint);
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
