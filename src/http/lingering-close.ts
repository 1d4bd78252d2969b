// Closing an HTTP/1.1 connection after an answer given while the client is still sending (an
// early 503 or 413 during an upload on a connection that then closes, a 431 to a head still
// coming): the answer must reach a client that reads only once its request is sent (Python's
// http.client, urllib and requests send the whole body first). Closing the socket at once, with
// the client's bytes unread or still on their way, has the kernel answer them with a reset: the
// client's next write fails (EPIPE, ECONNRESET) and it never reads the answer, which sat in its
// receive buffer. So, as nginx's lingering close and Envoy's delayed close do: the answer is
// flushed and our side half-closed (FIN), the socket is taken from the HTTP parser (nothing it
// sends now is a request), and what still comes is read and dropped until the client closes its
// side, or for LINGER_MS at most, LINGER_IDLE_MS of quiet, or LINGER_MAX_BYTES: a client that
// never stops sending is cut all the same.

import { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

/** The longest a connection lingers after its last answer, however much the client still sends. */
export const LINGER_MS = 3_000;
/** A client that sends nothing for this long is done sending. */
export const LINGER_IDLE_MS = 1_000;
/** The most a lingering connection reads and drops before it is cut. */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024;

interface Linger {
  readonly until: number;
  lastReadAt: number;
  read: number;
  timer: NodeJS.Timeout | undefined;
}

const kLinger = Symbol('meshcar.linger');
// `parser` is Node's HTTP/1.1 server's, while it serves the socket (null once it let go: an
// Upgrade, a CONNECT, the close); `incoming` is the request it is reading
type HttpSocket = Socket & { [kLinger]?: Linger; parser?: { incoming?: IncomingMessage | null } | null };

/**
 * For a socket Node's HTTP/1.1 server serves (its 'connection' event): when the server closes it
 * after an answer (`Connection: close`, HTTP/1.0) while the request being read is unfinished, the
 * connection lingers (lingeringClose); otherwise it closes as before. One shared function: no
 * closure per connection.
 */
export function lingerWhenClosedEarly(socket: Socket): void {
  socket.destroySoon = destroySoonLingering;
}

function destroySoonLingering(this: HttpSocket): void {
  const reading = this.parser?.incoming;
  if (reading !== undefined && reading !== null && !reading.complete) lingeringClose(this);
  else Socket.prototype.destroySoon.call(this);
}

/** Whether the connection is lingering: closed for requests, its answers written, reading to drop. */
export function isLingering(socket: Socket): boolean {
  return (socket as HttpSocket)[kLinger] !== undefined;
}

/**
 * Ends the connection after what was written to it (our FIN), reading and dropping what the
 * client still sends within the bounds above, then destroys it. For a client that already ended
 * its side (nothing more can come), or a socket whose HTTP parser cannot be taken off, the plain
 * destroySoon.
 */
export function lingeringClose(socket: Socket): void {
  const s = socket as HttpSocket;
  if (s.destroyed || s[kLinger] !== undefined) return;
  if (s.readableEnded || !s.readable || !detachHttpParser(s)) {
    Socket.prototype.destroySoon.call(s);
    return;
  }
  const now = performance.now();
  s[kLinger] = { until: now + LINGER_MS, lastReadAt: now, read: 0, timer: setTimeout(checkLinger, LINGER_IDLE_MS, s) };
  if (s.writable) s.end();
  s.on('data', dropLingering);
  s.on('end', destroySelf);
  s.on('error', destroySelf);
  s.on('close', stopLingering);
  s.resume();
  // a socket an unread body had paused is resumed above only in name: the parser had stopped
  // its handle reading, which Node's server restarts itself (onSocketResume) and no longer does
  const handle = (s as { _handle?: { reading?: boolean; readStart?(): number } | null })._handle;
  if (handle?.readStart !== undefined && handle.reading !== true) {
    handle.reading = true;
    handle.readStart();
  }
}

/**
 * Takes the socket from Node's HTTP/1.1 server, as the server itself does for an Upgrade: its
 * 'data' and 'end' listeners off, so nothing more is parsed (a request sent now is bytes to
 * drop, never a request), and the parser no longer reads the socket's handle itself (adding a
 * 'data' listener makes Node's server give that up). False when the listeners are not there as
 * Node 20 names them: the caller closes at once, as without a linger.
 */
function detachHttpParser(socket: HttpSocket): boolean {
  if (socket.parser === undefined || socket.parser === null) return true;
  const onData = socket.listeners('data').find((listener) => listener.name === 'bound socketOnData');
  const onEnd = socket.listeners('end').find((listener) => listener.name === 'bound socketOnEnd');
  if (onData === undefined || onEnd === undefined) return false;
  socket.removeListener('data', onData as (chunk: Buffer) => void);
  socket.removeListener('end', onEnd as () => void);
  return true;
}

function dropLingering(this: HttpSocket, chunk: Buffer): void {
  const linger = this[kLinger] as Linger;
  linger.read += chunk.length;
  linger.lastReadAt = performance.now();
  if (linger.read > LINGER_MAX_BYTES) this.destroy();
}

function checkLinger(socket: HttpSocket): void {
  const linger = socket[kLinger] as Linger;
  linger.timer = undefined;
  const now = performance.now();
  const quietFor = now - linger.lastReadAt;
  if (now >= linger.until || quietFor >= LINGER_IDLE_MS) {
    socket.destroy();
    return;
  }
  linger.timer = setTimeout(checkLinger, Math.min(LINGER_IDLE_MS - quietFor, linger.until - now), socket);
}

function stopLingering(this: HttpSocket): void {
  clearTimeout(this[kLinger]?.timer);
}

function destroySelf(this: Socket): void {
  this.destroy();
}
