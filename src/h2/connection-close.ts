// How a connection ends: the graceful close (GOAWAY in two steps on a server, so requests
// already on the wire are not lost), the peer's GOAWAY (our streams it never processed fail as
// 'refused', safe to retry), a connection error (GOAWAY with its code), and the one teardown
// they all end in: streams lost, timers stopped, what is queued flushed, the socket ended, the
// observer told once.

import { ErrorCode, MAX_STREAM_ID } from './constants.js';
import type { H2Connection } from './connection.js';
import { H2ConnectionError, H2StreamError, SessionClosingError, type ConnectionCloseReason, type ConnectionFault } from './errors.js';
import { loseStream, receiveReset } from './stream-receive-side.js';
import { forgetStream } from './stream-registry.js';

/** How long the graceful close waits for the PING that follows the first GOAWAY. */
const GOAWAY_PING_TIMEOUT_MS = 2_000;
/** How long an ended socket may wait for a peer that never closes its side. */
const SOCKET_DESTROY_GRACE_MS = 1_000;

/**
 * No new streams, those in flight finish, then the socket ends. A server sends GOAWAY(2^31 − 1)
 * first, then after one PING round trip GOAWAY with the real last stream id (RFC 9113 §6.8).
 */
export function closeGracefully(c: H2Connection): void {
  if (c.closing || c.destroyed) {
    c.maybeFinish();
    return;
  }
  c.closing = true;
  if (!c.isServer) {
    sendGoaway(c, 0, ErrorCode.NO_ERROR);
    c.finalGoawaySent = true;
    c.maybeFinish();
    return;
  }
  sendGoaway(c, MAX_STREAM_ID, ErrorCode.NO_ERROR);
  let done = false;
  const second = (): void => {
    if (done || c.destroyed) return;
    done = true;
    clearTimeout(timer);
    c.lastAcceptedStreamId = c.lastPeerStreamId;
    sendGoaway(c, c.lastPeerStreamId, ErrorCode.NO_ERROR);
    c.finalGoawaySent = true;
    c.maybeFinish();
  };
  const timer = setTimeout(second, GOAWAY_PING_TIMEOUT_MS);
  timer.unref();
  c.ping(second);
}

/**
 * Every GOAWAY we send: its last stream id is never above that of an earlier one, nor above
 * the last stream we accepted after our final GOAWAY (RFC 9113 §6.8).
 */
export function sendGoaway(c: H2Connection, lastStreamId: number, code: number, debug?: Buffer): void {
  const last = Math.min(lastStreamId, c.lastGoawayStreamId, c.lastAcceptedStreamId);
  c.lastGoawayStreamId = last;
  c.writer.goaway(last, code, debug);
}

/** The peer's GOAWAY: no new streams; ours above `lastStreamId` were never processed. */
export function goawayFromPeer(c: H2Connection, lastStreamId: number, code: number, debug: Buffer): void {
  c.goawayReceived = true;
  c.closing = true;
  if (code !== ErrorCode.NO_ERROR) {
    c.closeReason ??= 'peer_goaway';
    c.closeCode = code;
  }
  // our streams the peer never processed: safe to retry elsewhere
  for (const stream of [...c.streams.values()]) {
    const ours = (stream.id & 1) === (c.isServer ? 0 : 1);
    if (ours && stream.id > lastStreamId) {
      stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
      forgetStream(c, stream);
      receiveReset(stream, ErrorCode.REFUSED_STREAM, 'refused');
    }
  }
  c.emit('goaway', code, lastStreamId, Buffer.from(debug));
  c.maybeFinish();
}

/** A connection error: GOAWAY with its code, then close. */
export function failConnection(c: H2Connection, fault: ConnectionFault): void {
  if (c.destroyed) return;
  sendGoaway(c, c.lastPeerStreamId, fault.h2Code, Buffer.from(fault.message.slice(0, 256)));
  if (c.listenerCount('error') > 0) c.emit('error', new H2ConnectionError(fault.reason, fault.h2Code, fault.message));
  terminate(c, fault.reason, fault.h2Code);
}

/** Ends everything once: streams lost, timers stopped, what is queued flushed, socket ended. */
export function terminate(c: H2Connection, reason: ConnectionCloseReason, code: number): void {
  if (c.destroyed) return;
  c.destroyed = true;
  c.closing = true;
  c.closeReason ??= reason;
  if (c.closeReason === reason) c.closeCode = code;
  if (c.settingsTimer) clearTimeout(c.settingsTimer);
  c.blocks.stop();
  // the rest of the socket chunk being read (a user callback destroyed us mid-chunk) is not processed
  c.reader.stop();
  c.pings.failAll(new SessionClosingError('the HTTP/2 connection closed'));
  for (const stream of [...c.streams.values()]) loseStream(stream, new H2StreamError('connection_lost', code, `the HTTP/2 connection closed (${c.closeReason})`));
  c.streams.clear();
  // what its streams held is gone with them (returnCredit gives nothing back once destroyed)
  if (c.receiveBudget !== undefined) {
    c.receiveBudget.held -= c.budgetHeld;
    c.budgetHeld = 0;
  }
  c.scheduler.clear();
  c.writer.flush();
  const socket = c.socket;
  socket.off('data', c.onSocketData);
  if (!socket.destroyed) {
    socket.end();
    // a peer that never closes its side: the socket goes after a grace period
    setTimeout(() => socket.destroy(), SOCKET_DESTROY_GRACE_MS).unref();
  }
  c.observer.connectionClosed?.(c.closeReason, c.closeCode);
  c.emit('close', c.closeReason, c.closeCode);
}
