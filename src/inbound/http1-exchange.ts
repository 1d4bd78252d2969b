// An exchange with an HTTP/1.1 caller: Node's IncomingMessage and ServerResponse underneath.
// Also carries Upgrade requests (WebSocket): those get a ServerResponse of their own for the
// refusals and non-101 answers, and become a byte tunnel when the app switches protocols.

import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { MeshcarError, describeError, type ErrorCode } from '../errors.js';
import { parseRequestTarget, targetShapeProblem } from '../http/absolute-form.js';
import { announcesBody } from '../http/body-framing.js';
import { dropConnectionOptions } from '../http/hop-by-hop.js';
import { sendError } from '../http/status.js';
import { closeWhenFlushed, markTunnel, relayEnd, resetTunnelSide, tcpUnder } from '../http/tunnel-reset.js';
import { switchingFields, switchingHead } from '../http/switching-fields.js';
import type { Caller } from './caller.js';
import { Exchange } from './exchange.js';
import { bindExchange, exchangeOf, type ExchangeContext } from './exchange-links.js';
import { loggedPath } from '../metrics/access-log.js';
import { formatDuration } from '../config/duration.js';

/** A 101's field only a sidecar may send. */
const APP_ONLY: ReadonlySet<string> = new Set(['x-meshcar-error']);

/**
 * The target in origin-form. An absolute-form one (`GET http://orders/x`: RFC 9112 §3.2.2 has
 * every server accept it) becomes its path, and its authority replaces Host for the policy and
 * the app, as the RFC has a server do (an HTTP/1.1 request without Host stays without, for the
 * 400 it gets all the same). One with userinfo, an empty authority (`http:///x`, which made the
 * app's Host empty) or a fragment is left as it came, for the path check to refuse.
 */
function originTarget(req: IncomingMessage): string {
  const url = req.url as string;
  if (url.charCodeAt(0) === 47 /* / */ || url.includes('#')) return url;
  const target = parseRequestTarget(url, req.method);
  const { authority, path } = target;
  if (authority === undefined || targetShapeProblem(target) !== undefined) return url;
  if (req.headers.host !== undefined || req.httpVersionMinor === 0) req.headers.host = authority;
  return path;
}

/**
 * The app's reason phrase if node:http can write it (HTAB, SP, VCHAR, obs-text), else none (the
 * status's own): llhttp reads DEL and control bytes in one, and writeHead threw on them, from a
 * node:http 'response' listener, which ended the process.
 */
function writableReason(reason: string | undefined): string | undefined {
  return reason === undefined || !UNWRITABLE_REASON.test(reason) ? reason : undefined;
}
const UNWRITABLE_REASON = /[^\t\x20-\x7e\x80-\xff]/;

export class Http1Exchange extends Exchange {
  readonly requestHasBody: boolean;
  /** The caller's connection, held here: whoever ends the request stream may null req.socket. */
  private readonly socket: Socket;
  /** Upgrade requests only: bytes the caller sent after its request head. */
  readonly upgradeHead: Buffer | undefined;
  /** Upgrade requests only: a tunnel with no bytes either way this long closes (inbound.tunnelIdleTimeout). */
  tunnelIdleTimeoutMs = 0;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    caller: Caller,
    context: ExchangeContext,
    readonly expectsContinue: boolean,
    upgradeHead?: Buffer,
  ) {
    super(caller, context, req.method as string, originTarget(req), dropConnectionOptions(req.headers));
    this.upgradeHead = upgradeHead;
    this.socket = req.socket;
    // an Upgrade request never forwards a body (the caller's body is refused before that)
    this.requestHasBody = upgradeHead === undefined && announcesBody(req.headers);
    context.tracker.requestStarted(req.socket);
    bindExchange(res, this);
    // and its request: a body that breaks mid-way is told to the exchange (request-dispatch.ts)
    bindExchange(req, this);
    res.on('close', onResponseClose); // fires once; once() would add a closure per request
  }

  /** An Upgrade request: Node hands over the bare socket, so the response is made here. */
  static forUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, caller: Caller, context: ExchangeContext, tunnelIdleTimeoutMs: number): Http1Exchange {
    // the HTTP server took its error listener off the socket with the upgrade: without one, a
    // caller's reset while the app decides would be thrown
    socket.on('error', destroySelf);
    // a tunnel carries half-closes: a caller that sends its FIN before the app's 101 still
    // reads the answer and what the app sends after it (its end goes on at the 101). With
    // Node's close-on-FIN the connection closed at once and the app's tunnel broke (a review)
    socket.allowHalfOpen = true;
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false; // whatever happens next, this connection carries no more requests
    res.assignSocket(socket);
    // the HTTP server no longer manages this socket: end it once a non-101 answer is written
    res.once('finish', endSocket);
    // nor passes its 'drain' on to the answer (it took that listener off at the upgrade): a
    // refusal's body stopped for good once the socket's buffer filled (~64 KB of a 4 MB 403,
    // then the idle timeout; the review of this session's tunnel changes)
    socket.on('drain', drainAnswer);
    const exchange = new Http1Exchange(req, res, caller, context, false, head);
    exchange.tunnelIdleTimeoutMs = tunnelIdleTimeoutMs;
    return exchange;
  }

  get requestHeaders() {
    return this.req.headers;
  }

  get authority(): string | undefined {
    return this.req.headers.host;
  }

  get requestBody() {
    return this.bodyReplacement ?? this.req;
  }

  get responseSink() {
    return this.res;
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get callerGone(): boolean {
    return this.socket.destroyed;
  }

  get http1Socket(): Socket {
    return this.socket;
  }

  // node:http's writeHead takes a flat list as well as an object
  get takesHeaderList(): boolean {
    return true;
  }

  protected writeHead(status: number, headers: OutgoingHttpHeaders | string[], endStream: boolean, statusMessage: string | undefined): boolean {
    // draining, or nothing more is read from the connection (a later pipelined request was an
    // Upgrade, a CONNECT or unparseable): it closes after this answer, which says so
    const closing = this.context.tracker.draining || this.context.tracker.closesWhenIdle(this.socket);
    if (Array.isArray(headers)) {
      headers = headers.slice(2); // no :status slot in HTTP/1.1 (node:http writes a list as it is)
      if (closing) headers.push('connection', 'close');
    } else if (closing) headers.connection = 'close';
    this.res.writeHead(status, writableReason(statusMessage), headers);
    if (endStream) {
      this.res.end();
      return false;
    }
    return true;
  }

  protected writeEnd(trailers: OutgoingHttpHeaders | undefined): void {
    if (trailers !== undefined) this.res.addTrailers(trailers);
    this.res.end();
  }

  protected writeContinue(): void {
    this.res.writeContinue();
  }

  protected writeError(code: ErrorCode, message: string, retryAfterSeconds: number | undefined, grpcType: string | undefined): void {
    const res = this.res;
    // an unread request body would be parsed as the next request: close instead. So does a
    // transfer coding we refused, its body read or not (the README promises the close): one
    // pipelined behind a slow request had its body parsed by then, and the next request went on
    const unread = this.requestHasBody && !this.req.complete;
    try {
      if (unread || code === 'unsupported_transfer_coding' || this.context.tracker.draining) res.setHeader('connection', 'close');
      sendError(res, new MeshcarError(code, message, { retryAfterSeconds }), { requestId: this.requestId, grpcType });
    } catch (fault) {
      // the error answer is the last thing a request's handling does: it never throws out of it
      // (from a node:http 'response' listener that ended the process); the connection goes
      this.context.logger.error({ code, err: describeError(fault) }, 'the error answer could not be sent (the connection was closed instead)');
      res.destroy();
      return;
    }
    if (unread) this.req.resume();
  }

  protected reset(): void {
    this.res.destroy();
  }

  protected refuseStream(): boolean {
    return false;
  }

  /**
   * The app answered 101: relay its head (all but an x-meshcar-error), then splice the two sockets together.
   * Backpressure both ways comes from pipe(); either side closing closes the other.
   */
  tunnel(appStatusMessage: string | undefined, appRawHeaders: readonly string[], appSocket: Socket, appHead: Buffer): void {
    const socket = this.req.socket;
    if (socket.destroyed || !this.switchProtocols()) {
      appSocket.destroy();
      return;
    }
    this.res.detachSocket(socket);
    this.res.off('finish', endSocket);
    // the hop-by-hop fields stay on the app's connection (switching-fields.ts), and an app's own
    // x-meshcar-error is dropped from every answer (only a sidecar says it answered)
    socket.write(switchingHead(appStatusMessage, switchingFields(appRawHeaders, APP_ONLY)), 'latin1');
    if (appHead.length > 0) socket.write(appHead);
    if (this.upgradeHead !== undefined && this.upgradeHead.length > 0) appSocket.write(this.upgradeHead);
    // a reset on one side is relayed as a reset, not a FIN: the tunnel carries half-closes, so
    // a FIN would tell the other app its peer ended cleanly (tunnel-reset.ts)
    socket.on('error', () => {
      resetTunnelSide(appSocket);
      socket.destroy();
    });
    appSocket.on('error', () => {
      resetTunnelSide(socket);
      appSocket.destroy();
    });
    // one side closed: the other closes once what is queued toward it has left. An end relayed
    // (a FIN) is behind that queue; destroyed at once, the last bytes an app wrote before its
    // close were thrown away and the caller read a clean end short of them (review of tunnels)
    appSocket.once('close', () => (socket.writableEnded ? closeWhenFlushed(socket) : socket.destroy()));
    socket.once('close', () => {
      if (appSocket.writableEnded) closeWhenFlushed(appSocket);
      else appSocket.destroy();
      this.tunnelClosed();
    });
    // half-close carries through, as Envoy's upgrade proxying does: a FIN from either side ends
    // the write toward the other (pipe) and the other's later bytes still come back. Set on the
    // tunnel's two sockets only (the caller's since its Upgrade: forUpgrade): plain requests
    // keep Node's close-on-FIN.
    appSocket.allowHalfOpen = true;
    // the node:http agent's idle timer (for pooled sockets: an upgraded one has left the pool,
    // its 'timeout' has no listener) is stopped, so that the app's socket, once half-closed, is
    // asked every second whether it was reset since (watchHalfClosed leaves a socket with a timer
    // alone): an app that half-closed and then reset (crashed) went unseen while the calling
    // app kept its side open, both sidecars holding the tunnel until tunnelIdleTimeout
    appSocket.setTimeout(0);
    // every byte either way passes through the caller's socket and re-arms its timer. Idle:
    // both sides reset, as the outbound does at its own limit; closed with a FIN, the calling
    // sidecar read a half-close and kept its app's connection open (review of tunnels, M2)
    const cut = () => {
      resetTunnelSide(appSocket);
      resetTunnelSide(socket);
    };
    // said once, at info: an idle cut reads to both apps as a reset, as a crashed peer would
    const idleCut = () => {
      this.context.logger.info({ peer: this.caller.id.uri, path: loggedPath(this.path), requestId: this.requestId }, `WebSocket tunnel cut: no bytes either way for ${formatDuration(this.tunnelIdleTimeoutMs)} (tunnelIdleTimeout)`);
      cut();
    };
    socket.setTimeout(this.tunnelIdleTimeoutMs, idleCut);
    markTunnel(socket, cut); // a drain that runs out cuts it alike (connections.ts)
    // each side's end is relayed once it is known to be a FIN: libuv reads a reset that came
    // right behind data (an app that writes its 101 and resets in one turn, the calling
    // sidecar resetting behind an app's last bytes) as an end, which piped on reached the other
    // side as a clean end and left the calling app's connection half-open on the outbound
    // (relayEnd)
    socket.pipe(appSocket, KEEP_OPEN);
    appSocket.pipe(socket, KEEP_OPEN);
    const callerEnded = () => relayEnd(socket, tcpUnder(socket), appSocket, cut);
    // its FIN may have come before the 101, with no bytes behind it to hold the end back:
    // relayed on the next turn, not from inside this read of the app's answer (as the outbound)
    if (socket.readableEnded) setImmediate(callerEnded);
    else socket.once('end', callerEnded);
    appSocket.once('end', () => relayEnd(appSocket, appSocket, socket, cut));
    socket.resume();
  }
}

/** pipe() options: a tunnel side's end is relayed by relayEnd, not by the pipe. */
const KEEP_OPEN = Object.freeze({ end: false });

function onResponseClose(this: ServerResponse): void {
  exchangeOf(this).callerClosed();
}

/** The socket drained: the answer still writing on it (a refusal; none after the 101 detaches it) may go on. */
function drainAnswer(this: Socket & { _httpMessage?: ServerResponse | null }): void {
  const answer = this._httpMessage;
  if (answer?.writableNeedDrain) answer.emit('drain');
}

function destroySelf(this: Socket): void {
  this.destroy();
}

// destroySoon, not end(): a caller that keeps its side open would hold the connection (and the
// drain, which waits for every connection) with nothing left to say on it
function endSocket(this: ServerResponse): void {
  this.socket?.destroySoon();
}
