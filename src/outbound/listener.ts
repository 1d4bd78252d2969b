// The app-facing port: ONE loopback TCP listener; each connection goes to Node's HTTP/1.1
// server (Upgrade, Expect: 100-continue, chunked framing as Node implements them) or to its
// HTTP/2 server (h2c with prior knowledge), by the first bytes (src/http/protocol-dispatch.ts).
// Also the connection bookkeeping that drain and close need: which HTTP/1.1 connections are
// idle (closed at drain), which h2c sessions are open (GOAWAY at drain). What each HTTP/1.1
// connection holds, and the requests refused before any forwarder sees them, are in
// app-connections.ts.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHostPort, type HostPort } from '../config/address.js';
import { listenFailed, MeshcarError } from '../errors.js';
import { closeAfterHttp10Coding } from '../http/body-framing.js';
import { dropConnectionOptions } from '../http/hop-by-hop.js';
import { refuseEarlyEnd } from '../http/early-end.js';
import { dispatchPlainSocket } from '../http/protocol-dispatch.js';
import { inTurn } from '../http/pipelined-turns.js';
import { errorBodyBytes, grpcAnswerType, sendStreamError } from '../http/status.js';
import type { RefusedHead } from '../http/client-error.js';
import { keepEveryHeadLine } from '../http/head-size.js';
import { headerListSize } from '../http/raw-headers.js';
import { destroyConnection } from '../http/tunnel-reset.js';
import { lingerWhenClosedEarly } from '../http/lingering-close.js';
import { logListenerErrors } from '../http/listener-errors.js';
import { expectsContinue } from './expect-continue.js';
import { closeWhenIdle, countOpenStream, openStreams, streamsOpenOn } from './h2c-idle.js';
import type { Logger } from 'pino';
import { requestIdOf } from '../http/request-id.js';
import { busy, closeAfterAnswers, ignore, kBusy, kCloseWhenIdle, kHttp2, kUpgraded, onClientError, onConnect, trackResponse, type TrackedSocket } from './app-connections.js';
import { serveWithoutH2cOffer } from './h2c-offer-ignored.js';
import { offersOnlyH2c } from '../http/upgrade.js';

/**
 * The head size the h2c listener advertises: heads up to it reach our own check (a recorded 431
 * with a message); past it Node resets the stream unanswered. Trailers, which that check does
 * not see, are held to what the upstream advertised as they go (head-limits.ts
 * upstreamTrailersProblem).
 */
const ANSWERED_HEAD_BYTES = 64 * 1024;

export interface AppHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  /** `socket`: the app's TCP connection, which Node's HTTP server has let go of. */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  /**
   * The body of a request already handed to request() broke mid-way (invalid chunked framing):
   * its forwarder answers or cuts it and stops the upstream's work; false: nobody took it (the
   * connection is destroyed).
   */
  brokenBody(req: IncomingMessage, err: MeshcarError): boolean;
  /** An Expect this listener cannot meet: the forwarder answers 417 and records it. */
  expectationFailed(req: IncomingMessage, res: ServerResponse): void;
  /** A request refused before any forwarder saw it was answered (HTTP/1.1's parser: 400, 408, 431; an h2c head over the limit: 431): recorded for the access log. */
  refused(refusal: MeshcarError, head?: RefusedHead): void;
}

export interface AppListenerLimits {
  /** Request head limit: 431 beyond it; h2c also advertises it (SETTINGS_MAX_HEADER_LIST_SIZE), which Node applies only once acknowledged. */
  readonly maxHeaderBytes: number;
  /** Idle time before an HTTP/1.1 keep-alive connection, or an h2c one with no stream open, is closed. */
  readonly keepAliveTimeoutMs: number;
  /**
   * h2c: streams one app connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS;
   * HTTP/1.1's counterpart is MAX_PIPELINED). Node's server sets none: one connection opening
   * 20,000 streams without reading had every one forwarded or refused, +122 MB RSS held.
   */
  readonly maxAppStreams: number;
  /**
   * An HTTP/1.1 request head that has not arrived in full this long after its first byte: 408.
   * Also the bound on a connection's first bytes: one that has sent nothing, or part of the h2c
   * preface, this long after it opened is closed.
   */
  readonly headersTimeoutMs: number;
}

export class AppListener {
  private readonly server: net.Server;
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  private readonly sockets = new Set<TrackedSocket>();
  private readonly h2Sessions = new Set<ServerHttp2Session>();
  private addressValue: HostPort | undefined;
  private windingDown = false;
  /** h2c sessions begun after the wind-down whose first stream has not come yet. */
  private readonly sessionsWithoutStream = new Set<ServerHttp2Session>();

  constructor(handlers: AppHandlers, limits: AppListenerLimits, private readonly logger: Logger) {
    this.http1 = http.createServer({
      maxHeaderSize: limits.maxHeaderBytes,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // an app that trickles a request head is cut off (408); bodies stream as long as they like
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: 0,
      // how often Node checks headersTimeout: a quarter of it, between 250 ms and 5 s
      connectionsCheckingInterval: Math.min(5_000, Math.max(250, limits.headersTimeoutMs / 4)),
      // a missing Host is refused by the forwarder, as a JSON error (Node's answer is a bare 400)
      requireHostHeader: false,
    });
    // every line of a head within maxHeaderBytes is kept: one cut at Node's 2000 lost the fields
    // past it, a Content-Length or Transfer-Encoding among them, while Node framed the body by them
    keepEveryHeadLine(this.http1, limits.maxHeaderBytes);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      dropConnectionOptions(req.headers);
      if (trackResponse(req, res, logger)) inTurn(req, res, handlers.request, Infinity, false);
    };
    this.http1.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored (no 1xx
      // may go to an HTTP/1.0 client): not relayed, not sent after the grace, not passed on
      // (Node emits checkContinue for HTTP/1.1 only)
      if (req.httpVersionMinor === 0 && expectsContinue(req.headers.expect)) delete req.headers.expect;
      closeAfterHttp10Coding(req, res);
      onRequest(req, res);
    });
    this.http1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      // relayed: the upstream's 100 becomes ours. Node fires this for any Expect naming
      // 100-continue (`100-continue, foo` too); one that also holds another expectation is
      // refused as any unknown expectation is (417, as Envoy does), not half-met
      if (expectsContinue(req.headers.expect)) onRequest(req, res);
      else if (trackResponse(req, res, logger)) inTurn(req, res, handlers.expectationFailed, Infinity, false);
    });
    // any other Expect: our 417 (Node's would be bare), counted like any answer on the connection
    this.http1.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      if (trackResponse(req, res, logger)) inTurn(req, res, handlers.expectationFailed, Infinity, false);
    });
    this.http1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(err, socket, limits.maxHeaderBytes, handlers));
    this.http1.on('connect', (req: IncomingMessage, socket: Socket) => onConnect(req, socket, handlers));
    // an answer that closes the connection while the app is still sending reaches it (lingering-close.ts)
    this.http1.on('connection', lingerWhenClosedEarly);
    // This server never listens itself: the plain listener hands it sockets. Node starts the
    // headersTimeout checks on 'listening' (without them an unfinished head is never cut), so
    // announce it once, as the inbound does.
    this.http1.emit('listening');
    this.http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // pipelined behind a request still unanswered: a 101 (or our refusal) cannot come before
      // that answer, which still holds the connection and would land inside the tunnel, so the
      // connection closes after the answers before it, as the inbound's does
      if (busy(socket as Socket)) {
        closeAfterAnswers(socket as Socket);
        return;
      }
      // h2c alone: the plain request it also is, answered in HTTP/1.1 (h2c-offer-ignored.ts)
      if (offersOnlyH2c(req.headers.upgrade)) {
        serveWithoutH2cOffer(this.http1, req, socket as Socket, head);
        return;
      }
      (socket as TrackedSocket)[kUpgraded] = true;
      dropConnectionOptions(req.headers);
      handlers.upgrade(req, socket as Socket, head);
    });

    // maxHeaderListPairs as HTTP/1.1's maxHeadersCount (2000; Node's h2 default is 128): a head
    // with more fields than an upstream takes gets our 431 (attempt.ts), not a bare reset.
    // maxConcurrentStreams: an HTTP/2 client (grpc-js, Go, nghttp2) queues its calls beyond it;
    // a stream opened past it anyway is refused unprocessed (RST_STREAM), never forwarded
    // maxHeaderListSize: what Node advertises and, once the app acknowledged it, resets a head
    // over before 'stream' (no status, no message, no record: grpc-js showed its calls failing
    // "Bandwidth exhausted"); at our limit, only first-flight heads got the 431 below. Advertised
    // at what an upstream sidecar takes, a head between the two gets our recorded 431 too
    this.http2 = http2.createServer({ settings: { maxHeaderListSize: Math.max(limits.maxHeaderBytes, ANSWERED_HEAD_BYTES), maxConcurrentStreams: limits.maxAppStreams }, maxHeaderListPairs: 2000 });
    this.http2.on('connection', (socket: TrackedSocket) => {
      socket[kHttp2] = true; // its session gets GOAWAY at drain, not a cut
    });
    this.http2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      // from its first moment: an 'error' on a stream nobody listens to ends the process (a
      // refusal written after a HEAD's head did); a reset by the app surfaces as 'close'
      stream.on('error', ignore);
      countOpenStream(stream);
      // an upload the app resets with NO_ERROR once our answer is complete must not end as a
      // whole body toward the upstream (Node ends it so): it is destroyed instead
      if ((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0) refuseEarlyEnd(stream);
      // Node advertises SETTINGS_MAX_HEADER_LIST_SIZE but takes a larger head anyway (nghttp2
      // only bounds each field): refused here, as HTTP/1.1's head over maxHeaderBytes is
      const size = headerListSize(rawHeaders);
      if (size > limits.maxHeaderBytes) {
        const refusal = new MeshcarError('headers_too_large', `the request head is ${size} bytes (RFC 9113 field-section size), over the outbound listener's limit of ${limits.maxHeaderBytes}`);
        const requestId = requestIdOf(headers);
        const grpcType = grpcAnswerType(headers['content-type']);
        const method = headers[':method'] ?? '';
        sendStreamError(stream, refusal, requestId, grpcType);
        // in the access log and metrics as HTTP/1.1's 431 is (it went unrecorded: a review),
        // with the method and request id the answer carries, and the bytes it had
        handlers.refused(refusal, { method, requestId, bodyBytes: errorBodyBytes(refusal, requestId, grpcType, method) });
        return;
      }
      handlers.stream(stream, headers);
    });
    this.http2.on('session', (session: ServerHttp2Session) => {
      this.h2Sessions.add(session);
      session.on('error', ignore);
      // taken before the listener closed, its preface read after the wind-down: its first stream
      // is waited for as an HTTP/1.1 connection's first request is (connectionsWithoutRequest;
      // a client that sent it a moment after the preface had the drain end without it: a
      // re-review), then GOAWAY as the others got (closed at once, that stream was refused)
      if (this.windingDown) {
        this.sessionsWithoutStream.add(session);
        session.once('stream', () => {
          this.sessionsWithoutStream.delete(session);
          session.close();
        });
        session.once('close', () => this.sessionsWithoutStream.delete(session));
      }
      closeWhenIdle(session, limits.keepAliveTimeoutMs);
      session.once('close', () => this.h2Sessions.delete(session));
    });
    this.http2.on('sessionError', ignore);

    this.server = net.createServer({ noDelay: true }, (socket: TrackedSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      dispatchPlainSocket(socket, { http1: this.http1, http2: this.http2 }, limits.headersTimeoutMs);
    });
  }

  get address(): HostPort | undefined {
    return this.addressValue;
  }

  get connections(): number {
    return this.sockets.size;
  }

  listen(at: HostPort): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      // named like the inbound's: a port in use says which listener and which key to change
      const onError = (err: Error) => reject(listenFailed(`outbound cannot listen on ${formatHostPort(at)} (outbound.listen)`, err));
      this.server.once('error', onError);
      this.server.listen(at.port, at.host, () => {
        this.server.off('error', onError);
        // after binding, an error (an accept that fails) is logged, never thrown
        logListenerErrors(this.server, this.logger, 'outbound');
        const bound = this.server.address() as AddressInfo;
        this.addressValue = { host: bound.address, port: bound.port };
        resolve(this.addressValue);
      });
    });
  }

  /** No new connections; open ones carry on. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /**
   * Drain, app side: GOAWAY on every h2c session (streams in flight finish, then it closes) and
   * close HTTP/1.1 connections idle between requests; busy ones, and new ones, close after their response
   * (the forwarder sets `Connection: close` while draining). Tunnels are left to finish.
   */
  windDown(): void {
    this.windingDown = true;
    // one begun after an earlier wind-down (a drain in two steps: at its time, then at the
    // listener's close) is told once its first stream is in (below): told now, that stream was
    // refused (a re-review)
    for (const session of this.h2Sessions) if (!this.sessionsWithoutStream.has(session)) session.close();
    for (const socket of this.sockets) {
      if (socket[kUpgraded] || socket[kHttp2]) continue;
      // idle between requests: closed now. One that has carried no request yet (just accepted)
      // may have its first on the wire: it is answered, then closed, as a busy one is (destroyed
      // here, the app's call met a reset 8 ms after it was sent: seen in a CI run's drain test)
      if (socket[kBusy] === 0) socket.destroy();
      else socket[kCloseWhenIdle] = true;
    }
  }

  /**
   * Connections that have carried no request yet (HTTP/1.1, or not known yet) and h2c sessions
   * begun after the wind-down with no stream yet (one just taken may have its first request on
   * the wire: the drain waits a moment for it).
   */
  connectionsWithoutRequest(): number {
    let count = this.sessionsWithoutStream.size;
    for (const socket of this.sockets) if (socket[kBusy] === undefined && !socket[kHttp2] && !socket[kUpgraded] && !socket.destroyed) count++;
    return count;
  }

  /** The app's h2c streams still open (a drain out of time ends its gRPC calls first: drain-grpc.ts). */
  openH2cStreams(): ServerHttp2Stream[] {
    return [...this.h2Sessions].flatMap(streamsOpenOn);
  }

  /**
   * Everything, at once. An h2c session with streams in flight is ended with
   * GOAWAY(INTERNAL_ERROR): a plain destroy sends NO_ERROR naming them as processed, and a Node
   * client then sees its cut stream end with no answer and no error (a drain that ran out of
   * time, close()). An idle one gets NO_ERROR: nothing of it failed, and a client that keeps
   * idle sessions would count an error for each.
   */
  destroyAll(): void {
    this.stopAccepting();
    // with an error (destroy(undefined, code) sends NO_ERROR whatever the code); the session and
    // every stream on it have an 'error' listener
    for (const session of this.h2Sessions) {
      if (openStreams(session) === 0) session.destroy();
      else session.destroy(new Error('the outbound listener is closing'), http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
    // a tunnel's app socket is cut with resets on both of its sides (tunnel-reset.ts)
    for (const socket of this.sockets) destroyConnection(socket);
  }
}
