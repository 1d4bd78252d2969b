// An app's HTTP/1.1 upload still going when its answer is complete (forward-http1.ts): watched
// to its end. Node's HTTP/1.1 server tells such a request nothing once its connection closes
// (it is no longer the connection's current request), so the connection itself is watched:
// closing first cancels the upstream stream. An upload held by the upstream's backpressure (or
// left with no stream) that moves no byte for UPLOAD_STALL_MS cancels it too: paused, the
// app's socket is not read, so its close is never seen. An upload nobody upstream wants any more
// is read and dropped, and its connection closed once it moves no byte for UPLOAD_STALL_MS (an
// app that stops mid-body would hold it for ever). Runs only for such uploads, never on the
// ordinary request path. Before any answer, an upload the upstream's backpressure holds paused
// has its connection asked every second whether it was reset (probeWhilePaused: a listener per
// request with a body still coming, a timer only while it is paused).

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Attempt } from './attempt.js';
import { attemptOf, bindAttempt } from './attempt-events.js';
import { isLingering } from '../http/lingering-close.js';

/**
 * After a complete answer, how long an unfinished upload may stand still while paused (the
 * upstream not taking it) before it is given up: a paused socket is not read, so an app that
 * went away meanwhile (its FIN or RST unread) would hold the stream until the idle timeout.
 * The same for an upload being discarded: the listener sets no request timeout, so an app that
 * stops sending mid-body, its socket open, would otherwise hold the connection for ever.
 */
const UPLOAD_STALL_MS = 1000;

/** The HTTP/1.1 attempt (forward-http1.ts) as the watch sees it: its upload and the watch's state. */
export interface UploadAttempt extends Attempt {
  readonly appBody: IncomingMessage;
  /** While an upload outlives the complete answer: its progress, checked every UPLOAD_STALL_MS. */
  uploadTimer: NodeJS.Timeout | undefined;
  uploadSeen: number;
  /** The upload is read and dropped (discardUpload): its connection goes when it stops moving. */
  discarding: boolean;
}

/**
 * The answer is complete, the app's upload is not, and it stays piped upstream. If the app's
 * connection closes now, Node's HTTP/1.1 server tells the request nothing (it is no longer the
 * connection's current one), so the connection itself is watched until the upload ends: closed
 * first, the upstream stream is cancelled, or it would stay half-open (a circuit-breaker slot
 * and the endpoint's load held) until the idle timeout.
 */
export function watchUpload(attempt: UploadAttempt): void {
  const up = attempt.upstream;
  const req = attempt.appBody;
  const socket = req.socket;
  // closing after its answer (`Connection: close`), the connection reads no more of the upload:
  // what it still sends is dropped (src/http/lingering-close.ts)
  if (socket.destroyed || isLingering(socket)) {
    attempt.cancelUpstream();
    return;
  }
  bindAttempt(socket, attempt);
  req.on('end', onUploadEnd);
  attempt.uploadSeen = attempt.exchange.bytesIn;
  if (up === undefined || up.closed) {
    discardUpload(attempt);
    return;
  }
  socket.on('close', onUploadConnectionClose);
  attempt.uploadTimer = setTimeout(checkUpload, UPLOAD_STALL_MS, attempt);
}

/** The watched upload: still moving, ended, stalled while paused, or stalled while discarded (given up). */
function checkUpload(attempt: UploadAttempt): void {
  attempt.uploadTimer = undefined;
  const req = attempt.appBody;
  if (req.complete || req.socket.destroyed) return;
  const up = attempt.upstream;
  const moved = attempt.exchange.bytesIn !== attempt.uploadSeen;
  attempt.uploadSeen = attempt.exchange.bytesIn;
  if (attempt.discarding) {
    // read and dropped, so the socket shows the app leaving; an app that stops sending and
    // keeps its socket open is the one left: nothing else would end it (no request timeout)
    if (moved) attempt.uploadTimer = setTimeout(checkUpload, UPLOAD_STALL_MS, attempt);
    else req.socket.destroy();
    return;
  }
  // the upstream is done with it: a peer that answered in full ends the stream with
  // RST_STREAM(NO_ERROR) (RFC 9113 §8.1), as meshcar's inbound does after an early answer
  if (up === undefined || up.destroyed) {
    discardUpload(attempt);
    return;
  }
  // paused by the pipe (the upstream's window is full): unread, the socket would never show
  // the app leaving; an upload still flowing shows its close itself
  if (!moved && req.readableFlowing === false) {
    attempt.cancelUpstream();
    req.socket.destroy();
    return;
  }
  attempt.uploadTimer = setTimeout(checkUpload, UPLOAD_STALL_MS, attempt);
}

/**
 * Nobody upstream wants the rest of the upload: it is read and dropped, as Node's server does
 * with a body nobody reads, so the keep-alive connection serves its next request once the
 * body ends (and an app that stops sending is seen leaving, its socket being read). Still
 * checked every UPLOAD_STALL_MS: an upload that stops moving has its connection closed.
 */
function discardUpload(attempt: UploadAttempt): void {
  attempt.discarding = true;
  attempt.appBody.unpipe();
  attempt.appBody.resume();
  clearTimeout(attempt.uploadTimer);
  attempt.uploadTimer = setTimeout(checkUpload, UPLOAD_STALL_MS, attempt);
}

/**
 * The upstream stream closed after the complete answer (its peer reset the upload it answered,
 * or we cut it): a watched upload is read and dropped now, not at the next check, which kept
 * the app's socket paused and its next request on the connection unread for up to
 * UPLOAD_STALL_MS (the meshcar codec's close comes after the answer's end).
 */
export function upstreamDoneWithUpload(attempt: UploadAttempt): void {
  if (attempt.uploadTimer === undefined || attempt.discarding || attempt.appBody.complete) return;
  discardUpload(attempt);
}

function stopWatchingUpload(attempt: UploadAttempt): void {
  clearTimeout(attempt.uploadTimer);
  attempt.uploadTimer = undefined;
}

function onUploadConnectionClose(this: Socket): void {
  const attempt = attemptOf<UploadAttempt>(this);
  stopWatchingUpload(attempt);
  attempt.cancelUpstream();
}

// the upload is whole: the connection may serve other requests, and is no longer watched for this one
function onUploadEnd(this: IncomingMessage): void {
  stopWatchingUpload(attemptOf<UploadAttempt>(this));
  this.socket.off('close', onUploadConnectionClose);
  bindAttempt(this.socket, undefined);
}

/**
 * While the upstream's backpressure holds an upload paused before any answer: how often the
 * app's connection is asked whether it was reset. Paused, the socket is not read, so an app
 * that reset its connection mid-upload went unseen until the upstream's idleTimeout (5 min):
 * the stream, a connection to the far app and a descriptor held, and the request recorded as
 * the upstream's 504 rather than the app's 499 (a review of slow peers).
 */
const PAUSED_PROBE_MS = 1000;
const EMPTY = Buffer.alloc(0);
const kProbe = Symbol('meshcar.pausedUploadProbe');
type ProbedBody = IncomingMessage & { [kProbe]?: NodeJS.Timeout | null };

/** Asks the app's connection, while `req`'s upload is paused, whether it was reset (a write of no bytes fails on a reset connection). */
export function probeWhilePaused(req: IncomingMessage): void {
  // once per request (a retry pipes the body again): null is watched, no probe running
  if ((req as ProbedBody)[kProbe] !== undefined) return;
  (req as ProbedBody)[kProbe] = null;
  req.on('pause', onUploadPaused);
}

function onUploadPaused(this: ProbedBody): void {
  if (this[kProbe] !== null || this.complete) return;
  this[kProbe] = setInterval(probePausedUpload, PAUSED_PROBE_MS, this).unref();
}

function probePausedUpload(req: ProbedBody): void {
  const socket = req.socket;
  if (req.complete || socket.destroyed || !req.isPaused()) {
    clearInterval(req[kProbe] ?? undefined);
    req[kProbe] = null;
    return;
  }
  // a write under way sees a reset by itself; an ending socket is not asked
  if (socket.writableLength > 0 || socket.writableEnded) return;
  // a reset connection fails the write (ECONNRESET, EPIPE): its close then cancels the stream, as the app leaving does
  socket.write(EMPTY, (err) => {
    if (err) socket.destroy();
  });
}
