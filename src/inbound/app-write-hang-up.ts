// A write to an HTTP/1.1 app's socket that fails because the app hung up, held back so the
// socket lives on to read what the app said before it went. An app may answer an upload
// before reading its body (401, 403, 413, even a whole 200) and then close its connection; the
// unread body makes its kernel send a TCP reset, which fails the sidecar's next write of the
// body (ECONNRESET, or EPIPE once the reset is known). Node's socket destroys itself on a
// failed write, and with it the app's complete answer, which came before the reset and still
// waited, unread, in the kernel: the caller was told 502 "the app closed the connection before
// answering" (Envoy and nginx relay such an answer). Held here, the failed write is reported
// to the client instead (the own one stops sending the body; undici and node:http simply stop,
// no 'drain' coming), and the read side decides: the answer read whole is relayed; a reset or
// close before it (or in its middle) is still an error. All three HTTP/1.1 clients hold it.

import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';

/** A write's errors that mean the app closed or reset the connection. */
const HANG_UPS = new Set(['ECONNRESET', 'EPIPE']);

type WriteCallback = (err?: Error | null) => void;

/** net.Socket's Writable implementation methods (stream.Writable's documented `_write`/`_writev`). */
interface SocketWrites {
  _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void;
  _writev(chunks: unknown, cb: WriteCallback): void;
}

/**
 * From now on a write of `socket` failing with ECONNRESET or EPIPE calls `onHangUp` instead of
 * failing the socket (which would destroy it), unless `onHangUp` returns false. A held write
 * never completes: later writes queue behind it, unsent, until the socket is destroyed, as it
 * must be once the request is settled.
 */
export function holdWriteHangUps(socket: net.Socket, onHangUp: (err: Error) => boolean): void {
  const writes = socket as unknown as SocketWrites;
  const write = writes._write;
  const writev = writes._writev;
  // stream.Writable hands _write and _writev the same callback every time (its state's onwrite),
  // so its wrapper is made once per socket, not per write on the request path
  let wrapped: WriteCallback | undefined;
  let wrapper: WriteCallback | undefined;
  const held = (cb: WriteCallback): WriteCallback => {
    if (cb === wrapped) return wrapper!;
    wrapped = cb;
    wrapper = (err) => {
      if (err && HANG_UPS.has((err as NodeJS.ErrnoException).code ?? '') && onHangUp(err)) return;
      cb(err);
    };
    return wrapper;
  };
  writes._write = function (this: SocketWrites, chunk, encoding, cb) {
    write.call(this, chunk, encoding, held(cb));
  };
  writes._writev = function (this: SocketWrites, chunks, cb) {
    writev.call(this, chunks, held(cb));
  };
}

/**
 * node:http's agent toward the app (app-http1-node.ts: Expect and Upgrade requests) with the
 * hold on its sockets while they carry a request (node:http reads the answer, then the reset or
 * the end, and settles the request). A tunnel's socket (an upgraded connection, which node:http
 * hands over, no longer its request's) fails its write as before: nothing reads an answer there.
 */
export class HangUpHoldingAgent extends http.Agent {
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback) as net.Socket | null | undefined;
    if (socket) holdWriteHangUps(socket, () => (socket as { _httpMessage?: unknown })._httpMessage != null);
    return socket;
  }

  /** Idle in the pool: a byte from the app now is out of step (an answer nobody asked for), and the connection is dropped, as the other two clients drop it. */
  override keepSocketAlive(socket: Duplex): void {
    // Node keeps the socket when this is truthy (its types say void)
    if (!(super.keepSocketAlive(socket) as unknown as boolean)) return false as unknown as void;
    socket.on('data', dropOutOfStep);
    return true as unknown as void;
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    socket.removeListener('data', dropOutOfStep);
    super.reuseSocket(socket, request);
  }
}

// node:http took such bytes for the next request's answer, or dropped them and reused the
// connection all the same (a review: a whole second answer 200 ms after the first)
function dropOutOfStep(this: Duplex): void {
  this.destroy();
}
