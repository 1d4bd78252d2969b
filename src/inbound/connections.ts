// Every accepted connection and every request in flight, so the listener can drain: HTTP/2
// sessions (either codec) get GOAWAY (session.close), idle HTTP/1.1 connections are closed at once and busy
// ones after their current response (which then carries `Connection: close`), both without
// waiting for the caller's own close, and whatever
// is still open when the drain time runs out is destroyed, gRPC calls given a status first
// (drain-grpc.ts).

import type { Socket } from 'node:net';
import type { CallerSession } from './caller-session.js';
import { destroyConnection } from '../http/tunnel-reset.js';
import { turnsWaiting } from '../http/pipelined-turns.js';
import type { Exchange } from './exchange.js';
import { endGrpcCallForDrain, GRPC_CUT_GRACE_MS } from './drain-grpc.js';
import { constants as h2constants, type ServerHttp2Session } from 'node:http2';
import { ErrorCode, H2Connection } from '../h2/index.js';

export class ConnectionTracker {
  /** Requests (and WebSocket tunnels) started and not yet finished. */
  inFlight = 0;
  draining = false;
  /**
   * Why the sidecar cut what was still open, once it has (destroyAll): the record of a request
   * cut then says so (exchange-report.ts), where it would read as the caller leaving (499).
   */
  cutBy: 'drain_timeout' | 'shutdown' | undefined = undefined;
  /** Every verified connection, until it closes. */
  private readonly sockets = new Set<Socket>();
  /** HTTP/1.1 connections -> requests in flight on each (0: idle between keep-alive requests). */
  private readonly http1 = new Map<Socket, number>();
  private readonly sessions = new Set<CallerSession>();
  /** HTTP/1.1 connections to close once their requests in flight are answered (see closeWhenIdle). */
  private readonly closing = new Set<Socket>();
  /** HTTP/2 gRPC calls in flight: a drain out of time ends them with a status (drain-grpc.ts). */
  private readonly grpcCalls = new Set<Exchange>();
  private onEmpty: (() => void) | undefined;

  get connections(): number {
    return this.sockets.size;
  }

  /** Every verified connection still open. */
  openSockets(): Iterable<Socket> {
    return this.sockets;
  }

  add(socket: Socket, http1: boolean): void {
    this.sockets.add(socket);
    if (http1) this.http1.set(socket, 0);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.http1.delete(socket);
      this.closing.delete(socket);
      if (this.sockets.size === 0) this.onEmpty?.();
    });
  }

  addSession(session: CallerSession): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    // a session that arrives while draining (its handshake was already under way) is told at once
    if (this.draining) session.close();
  }

  /** An HTTP/1.1 connection with a request still unanswered (a later one is pipelined behind it). */
  busy(socket: Socket): boolean {
    return (this.http1.get(socket) ?? 0) > 0;
  }

  /**
   * Nothing more is read from `socket` (a later pipelined request was unparseable): it closes
   * once the requests in flight on it are answered, their answers first.
   */
  closeWhenIdle(socket: Socket): void {
    this.closing.add(socket);
  }

  /**
   * Whether the answer being written on `socket` is its last (closeWhenIdle, and none waits its
   * turn behind it: a Connection: close would make Node drop that one).
   */
  closesWhenIdle(socket: Socket): boolean {
    return this.closing.size > 0 && this.closing.has(socket) && !turnsWaiting(socket);
  }

  /** `socket`: the HTTP/1.1 connection the request came on; undefined for HTTP/2 streams. */
  requestStarted(socket: Socket | undefined): void {
    this.inFlight++;
    if (socket !== undefined) {
      const active = this.http1.get(socket);
      if (active !== undefined) this.http1.set(socket, active + 1);
    }
  }

  grpcCallStarted(exchange: Exchange): void {
    this.grpcCalls.add(exchange);
  }

  grpcCallDone(exchange: Exchange): void {
    this.grpcCalls.delete(exchange);
  }

  requestDone(socket: Socket | undefined): void {
    this.inFlight--;
    if (socket === undefined) return;
    const active = this.http1.get(socket);
    if (active === undefined) return;
    this.http1.set(socket, active - 1);
    if (active !== 1) return;
    if (this.closing.has(socket)) socket.destroySoon();
    // a response begun before the drain went out without `Connection: close`; destroySoon, not
    // end: a caller that keeps its side open (see drain) must not hold the drain
    else if (this.draining) socket.destroySoon();
  }

  /**
   * Stops new work on every connection and waits until all have closed, or `timeoutMs` has
   * passed; then destroys what is left. The caller stops the listener first.
   */
  async drain(timeoutMs: number, refuseWaiting: () => number = () => 0): Promise<void> {
    this.draining = true;
    for (const session of this.sessions) session.close();
    // destroySoon, not end: the caller gets its FIN all the same, and one whose pool reads
    // nothing from an idle connection (so closes it only at its next use) does not hold the
    // drain until its timeout with nothing in flight
    for (const [socket, active] of this.http1) if (active === 0) socket.destroySoon();
    await this.untilEmpty(timeoutMs);
    // what is still open now is cut by us: its records say so (exchange-report.ts)
    if (this.sockets.size > 0) this.cutBy ??= 'drain_timeout';
    // requests still waiting for the app were never sent: refused as such (REFUSED_STREAM), so
    // the calling sidecar sends them again elsewhere, whatever their method
    const refused = this.sockets.size > 0 ? refuseWaiting() : 0;
    const grpcCut = this.sockets.size > 0 && this.grpcCalls.size > 0;
    if (grpcCut) for (const exchange of [...this.grpcCalls]) endGrpcCallForDrain(exchange);
    // their sessions close once the refusals and statuses are out (GOAWAY was sent at the start)
    if (refused > 0 || grpcCut) await this.untilEmpty(GRPC_CUT_GRACE_MS);
    this.destroyAll();
  }

  /** Resolves once every connection has closed, or after `timeoutMs`. */
  private async untilEmpty(timeoutMs: number): Promise<void> {
    if (this.sockets.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.onEmpty = resolve;
      timer = setTimeout(resolve, Math.max(0, timeoutMs));
    });
    clearTimeout(timer);
    this.onEmpty = undefined;
  }

  /**
   * Everything, at once. With requests in flight, the HTTP/2 sessions end with
   * GOAWAY(INTERNAL_ERROR): a plain destroy sends NO_ERROR, naming the streams cut as processed,
   * and a caller other than a meshcar sidecar (Node's client) then saw its cut stream end with
   * no error, a download after its head as if complete (as the outbound's listener does).
   */
  destroyAll(): void {
    this.draining = true;
    this.cutBy ??= 'shutdown';
    for (const session of this.sessions) {
      if (this.inFlight === 0) session.destroy();
      else cutSession(session);
    }
    // a tunnel's socket is cut with resets on both of its sides (tunnel-reset.ts)
    for (const socket of this.sockets) destroyConnection(socket);
  }
}

/** destroy() with GOAWAY(INTERNAL_ERROR), on either codec (Node sends NO_ERROR for a destroy without an error). */
function cutSession(session: CallerSession): void {
  if (session instanceof H2Connection) session.destroy(ErrorCode.INTERNAL_ERROR);
  // the session and its streams have 'error' listeners (caller-connections.ts, http2-exchange.ts)
  else (session as unknown as ServerHttp2Session).destroy(new Error('the inbound is closing'), h2constants.NGHTTP2_INTERNAL_ERROR);
}
