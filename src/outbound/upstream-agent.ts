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
// - SETTINGS within the connect timeout: http2-wrapper (timeout 0) waits for the peer's first
//   SETTINGS for ever, and every request queued on that session with it. A socket whose
//   session has not got them connectTimeoutMs after the dial began is destroyed, which rejects
//   the session's waiting requests (an endpoint that completes TLS and then says nothing).
// - Waiting requests can be given up (a StreamWait's token: the requester went away, or the
//   wait's bound passed): a cancelled one is never handed a session nor queued for another one.
// - A session whose peer allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0) is closed and
//   fails its waiting requests, instead of being re-dialled in an endless loop.

import type { ClientHttp2Session, ClientHttp2Stream, ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import http2wrapper from 'http2-wrapper';
import { MeshcarError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { DialBudgets } from './dial-budgets.js';
import { dialHttp2, endpointOfSocket, markEndpoint, settingsLate, type TlsConnectOptions } from './mutual-tls.js';
import type { WaitToken } from './stream-wait.js';
import { refuseOverPeerList } from './head-limits.js';
import { keepEarlyEnd } from './early-stream-end.js';

export interface UpstreamAgentOptions {
  readonly identity: WorkloadIdentity;
  /** What failed dials may cost per endpoint (dial-budgets.ts). */
  readonly budgets: DialBudgets;
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly expectedId: string;
  /** Read per dial (a reload may change it): bounds TCP connect + TLS, and then the peer's SETTINGS. */
  readonly connectTimeoutMs: () => number;
  readonly endpointFor: (originHost: string) => UpstreamEndpoint | undefined;
  /** A dial failed (connect, TLS, no SETTINGS, closed before them): recorded once per dial, where it happens. */
  readonly dialFailed: (endpoint: UpstreamEndpoint, err: unknown) => void;
}

export class UpstreamAgent extends http2wrapper.Agent {
  private readonly tickets = new Map<string, Buffer>();
  private readonly tlsOptions: Omit<TlsConnectOptions, 'session' | 'onTicket' | 'alpn' | 'timeoutMs'>;
  private readonly endpointFor: UpstreamAgentOptions['endpointFor'];
  private readonly connectTimeoutMs: () => number;
  private readonly dialFailed: UpstreamAgentOptions['dialFailed'];

  constructor(options: UpstreamAgentOptions) {
    // idle sessions are bounded by the session lifecycle (max age), not by a count that
    // would make round-robin over many endpoints churn connections
    super({ maxEmptySessions: Number.POSITIVE_INFINITY });
    this.endpointFor = options.endpointFor;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.dialFailed = options.dialFailed;
    // emitted when a session's first SETTINGS came: its socket's SETTINGS timer is done
    this.on('session', (session: ClientHttp2Session) => settled(session.socket));
    this.tlsOptions = {
      identity: options.identity,
      budgets: options.budgets,
      checkServerIdentity: verifyServerSpiffeId(options.expectedId),
    };
  }

  override normalizeOptions(): string {
    return '';
  }

  override async createConnection(origin: URL): Promise<TLSSocket> {
    const endpoint = this.endpointFor(origin.host);
    if (!endpoint) throw new MeshcarError('upstream_unavailable', `${origin.host} is no longer an endpoint`);
    // the pool's current value, as the meshcar codec reads it: a reloaded `connectTimeout` (or `timeout`) reaches new dials
    const ms = this.connectTimeoutMs();
    // one bound for the whole dial: a peer that finished TLS just in time gets no second one for its SETTINGS
    const deadline = performance.now() + ms;
    const socket = await dialHttp2(endpoint, { ...this.tlsOptions, timeoutMs: ms }, this.tickets);
    Object.defineProperty(socket, 'getPeerX509Certificate', { value: hiddenPeerX509, configurable: true });
    // the session's origin, as http2-wrapper reads it at SETTINGS: with no server name (none is
    // sent: mutual-tls.ts) it put the bare remote address in, and core http2 made
    // `https://::1:PORT` of an IPv6 one: an Invalid URL thrown in a session listener, an
    // uncaught exception that ended the process at the first dial of an IPv6 endpoint. The
    // URL's hostname is bracketed for IPv6, as the origin the session is asked for is.
    (socket as { servername?: unknown }).servername = endpoint.origin.hostname;
    markEndpoint(socket, endpoint);
    // HTTP/2 installs its own handler; this one only stops a late second error from throwing
    socket.on('error', ignore);
    const timer = setTimeout(() => {
      // the session sees its socket fail with this error and rejects the requests waiting on it
      socket.destroy(Object.assign(new Error(settingsLate(endpoint.key, ms)), { code: 'ETIMEDOUT' }));
    }, Math.max(0, deadline - performance.now()));
    timer.unref();
    (socket as SocketWithTimer)[kSettingsTimer] = timer;
    socket.once('close', () => settled(socket));
    return socket;
  }

  /**
   * agent.request() for a waiting request that may be given up: the stream is made only if
   * `wait` is still wanted when a session comes. Each rejection is settled once (a session
   * that fails rejects its listeners on 'error' and again on 'close').
   */
  requestFor(endpoint: UpstreamEndpoint, options: object, headers: OutgoingHttpHeaders, streamOptions: ClientSessionRequestOptions, wait: WaitToken): Promise<ClientHttp2Stream> {
    return new Promise((resolve, reject) => {
      let settledOnce = false;
      const listener: WaitingListener = {
        wait,
        resolve: (session: ClientHttp2Session) => {
          if (settledOnce || wait.cancelled) return;
          settledOnce = true;
          try {
            refuseOverPeerList(session, headers);
            const stream = session.request(headers, streamOptions);
            // it may end before the promise's holder listens to it (early-stream-end.ts)
            keepEarlyEnd(stream);
            resolve(stream);
          } catch (err) {
            reject(err);
          }
        },
        // http2-wrapper rejects a listener only when the dial it waits on fails (its session's
        // error or close before SETTINGS, or createConnection's error), with one error object
        // for all of them: the dial's failure is recorded here, also when its requester is gone
        reject: (err: unknown) => {
          if (settledOnce) return;
          settledOnce = true;
          this.dialFailed(endpoint, err);
          reject(err);
        },
      };
      void (this as unknown as AgentInternals).getSession(endpoint.origin, options, [listener]);
    });
  }

  /** http2-wrapper's hand-out of a session to its waiting requests: those given up are dropped first (never re-queued for a new session). */
  _accept(session: ClientHttp2Session, listeners: WaitingListener[], normalizedOrigin: string, options: unknown): void {
    if (session.remoteSettings.maxConcurrentStreams === 0) {
      // a peer that allows no stream: http2-wrapper would re-queue the listeners, dial again at
      // once and meet the same, in an endless loop (hundreds of connections a second, all left
      // open). The session is unusable: closed, and its waiting requests fail as a failed dial
      // (the endpoint rests for the backoff, see pool-failover.ts), recorded where every failed
      // dial is: the listeners' rejection (requestFor), here only when none is left to reject.
      const endpoint = endpointOfSocket(session.socket);
      const err = new MeshcarError('upstream_unavailable', `${endpoint?.key ?? normalizedOrigin} allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)`);
      session.destroy();
      const waiting = listeners.splice(0);
      if (waiting.length === 0 && endpoint) this.dialFailed(endpoint, err);
      for (const l of waiting) l.reject(err);
      return;
    }
    let kept = 0;
    for (let i = 0; i < listeners.length; i++) {
      const l = listeners[i] as WaitingListener;
      if (!l.wait?.cancelled) listeners[kept++] = l;
    }
    listeners.length = kept;
    if (kept === 0) return;
    (http2wrapper.Agent.prototype as unknown as AgentInternals)._accept.call(this, session, listeners, normalizedOrigin, options);
  }

  /** After a rotation: new sessions must do a full handshake with the new certificate. */
  forgetTlsSessions(endpointKey?: string): void {
    if (endpointKey === undefined) this.tickets.clear();
    else this.tickets.delete(endpointKey);
  }
}

interface WaitingListener {
  readonly wait?: WaitToken;
  resolve(session: ClientHttp2Session): void;
  reject(err: unknown): void;
}

/** What this subclass calls of http2-wrapper's Agent that its types do not declare. */
interface AgentInternals {
  getSession(origin: URL, options: object, listeners: WaitingListener[]): Promise<void>;
  _accept(session: ClientHttp2Session, listeners: WaitingListener[], normalizedOrigin: string, options: unknown): void;
}

const kSettingsTimer = Symbol('meshcar.settingsTimer');
type SocketWithTimer = TLSSocket & { [kSettingsTimer]?: NodeJS.Timeout | undefined };

/** The socket's session got its SETTINGS, or the socket closed: its SETTINGS timer stops. */
function settled(socket: unknown): void {
  const s = socket as SocketWithTimer | undefined;
  if (s?.[kSettingsTimer] === undefined) return;
  clearTimeout(s[kSettingsTimer]);
  s[kSettingsTimer] = undefined;
}

function hiddenPeerX509(): undefined {
  return undefined;
}

function ignore(): void {}
