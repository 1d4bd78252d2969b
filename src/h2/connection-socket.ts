// The connection's socket: what a connection sends as it opens (the client preface, our
// SETTINGS, the first connection WINDOW_UPDATE) and listens to, and what each socket event
// means. 'data' feeds the frame reader (a peer that never reads what it makes us send is cut
// off); 'drain' resumes sending; 'end', 'close' and 'error' end the connection (teardown in
// connection-close.ts).

import type { Duplex } from 'node:stream';
import { CLIENT_PREFACE, ErrorCode } from './constants.js';
import type { H2Connection } from './connection.js';
import { failConnection, terminate } from './connection-close.js';
import { localSettings, startSettingsTimer } from './connection-settings.js';
import { ConnectionFault } from './errors.js';
import { releaseReadPieces } from './stream-receive-side.js';
import { SOCKET_HIGH_WATER } from './send-scheduler.js';

/**
 * What may wait to leave a caller's connection before it is no longer read: well above where
 * DATA waits (SOCKET_HIGH_WATER, plus a frame), so a caller's own downloads never pause it. A
 * caller whose client stops reading while its own writes wait (nghttp2 does) and that uploads
 * as it downloads would otherwise wait on us as we wait on it (the review of the pause).
 */
const READ_PAUSE_BACKLOG = 4 * SOCKET_HIGH_WATER;

/** The socket's 'data' listener, made once per connection (H2Connection.onSocketData). */
export function socketDataHandler(c: H2Connection): (chunk: Buffer) => void {
  return (chunk: Buffer): void => {
    if (c.destroyed) return;
    try {
      c.reader.push(chunk);
    } catch (err) {
      failConnection(c, err instanceof ConnectionFault ? err : new ConnectionFault('internal_error', ErrorCode.INTERNAL_ERROR, `internal error: ${(err as Error)?.message}`));
      return;
    }
    // destroyed by a user callback (or a GOAWAY) while the chunk was read: the reader stopped there
    if (c.destroyed) return;
    if (c.releases.length > 0) {
      const released = c.releases;
      c.releases = [];
      releaseReadPieces(released);
    }
    const backlog = c.socket.writableLength + c.writer.pending;
    // a peer that floods us with frames needing an answer while never reading its socket
    if (backlog > c.limits.maxOutboundBuffer) {
      c.writer.discard();
      failConnection(c, new ConnectionFault('outbound_flood', ErrorCode.ENHANCE_YOUR_CALM, 'the peer does not read what it makes us send'));
    } else if (c.isServer && backlog > READ_PAUSE_BACKLOG && c.socket.writableNeedDrain) {
      // a caller that does not read what we send is not read either until it does: its next
      // requests wait in its own socket, not their answers' heads in our memory. HEADERS did
      // not wait anywhere: answers of a caller that never read queued up to maxOutboundBuffer,
      // 16 MiB a connection, 1024 connections a caller (the hostile-caller review). Only with
      // a 'drain' to come, which reads it again
      c.socket.pause();
    }
  };
}

/** The socket drained: what waits goes out, and a caller paused for not reading is read again. */
function onSocketDrain(this: Duplex & { [kConnection]?: H2Connection }): void {
  const c = this[kConnection];
  if (c === undefined || c.destroyed) return;
  if (c.isServer && this.isPaused()) this.resume();
  c.sendPending();
}

const kConnection = Symbol('meshcar.h2Connection');

/**
 * Listens to the socket, sends what the connection opens with, starts the wait for the peer's
 * SETTINGS ACK, then reads `head` (bytes already read off the socket by whoever handed it over).
 */
export function openOnSocket(c: H2Connection, head: Buffer | undefined): void {
  const socket = c.socket;
  socket.on('data', c.onSocketData);
  (socket as Duplex & { [kConnection]?: H2Connection })[kConnection] = c;
  socket.on('drain', onSocketDrain);
  socket.on('error', () => terminate(c, 'socket_error', ErrorCode.INTERNAL_ERROR));
  socket.on('end', () => {
    // the peer leaving with nothing in flight (idle, or after its GOAWAY) is an ordinary end
    const clean = c.goawayReceived || c.streams.size === 0;
    if (!c.destroyed) c.writer.flush();
    (socket as Duplex).end();
    terminate(c, clean ? 'normal' : 'socket_error', ErrorCode.NO_ERROR);
  });
  socket.on('close', () => {
    terminate(c, c.streams.size === 0 ? 'normal' : 'socket_error', ErrorCode.NO_ERROR);
  });
  (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

  if (!c.isServer) c.writer.raw(CLIENT_PREFACE);
  c.writer.settings(localSettings(c.limits, c.isServer));
  const increment = c.recvWindow.growTo(c.limits.connectionWindowSize);
  if (increment > 0) c.writer.windowUpdate(0, increment);
  startSettingsTimer(c);
  if (head !== undefined && head.length > 0) c.onSocketData(head);
  // a socket paused by whoever handed it over would never deliver a frame
  socket.resume();
}
