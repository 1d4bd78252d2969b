// Puts a HandshakeGate (handshake-gate.ts) under every TLS socket a tls.Server accepts: the
// server's own connection handler is handed the gate instead of the accepted TCP socket, and the
// gate gets the caller's TLS 1.3 handshake secret from the 'keylog' event. Node wraps a stream
// that is no net.Socket in a JS stream socket, so the TLS socket no longer knows its TCP socket:
// `_parent` (which this code base reads for the TCP socket's address and byte counts, as Node
// sets it for a net.Socket) and the remote address are set on it here, at its first event.
// The server's other 'connection' listeners still get the TCP socket.

import type { Socket } from 'node:net';
import type { Server, TLSSocket } from 'node:tls';
import { HandshakeGate } from './handshake-gate.js';
import { keylogSecret } from './tls13-records.js';

type Gated = TLSSocket & {
  _parent?: Socket | null;
  _handle?: { _parentWrap?: { stream?: unknown } } | null;
};

const gates = new WeakMap<TLSSocket, HandshakeGate>();
const SECRET_LABEL = Buffer.from('CLIENT_HANDSHAKE_TRAFFIC_SECRET');

/**
 * The gate under a TLS socket of a gated server (undefined for any other), its TCP socket set as
 * the TLS socket's `_parent` and its address as the TLS socket's, once found.
 */
export function gateOf(socket: TLSSocket): HandshakeGate | undefined {
  const known = gates.get(socket);
  if (known !== undefined) return known;
  // Node keeps the wrapped stream on the TLS handle's JS stream socket (lib/_tls_wrap.js, lib/internal/js_stream_socket.js)
  const stream = (socket as Gated)._handle?._parentWrap?.stream;
  if (!(stream instanceof HandshakeGate)) return undefined;
  gates.set(socket, stream);
  linkToTcp(socket, stream.raw);
  return stream;
}

/**
 * Has a TLS socket over a gate read its TCP socket's addresses and know it as `_parent`, as one
 * over the TCP socket itself does (Node asks the JS stream, which has no addresses).
 */
export function linkToTcp(socket: TLSSocket, tcp: Socket): void {
  const linked = socket as Gated & { _getpeername?: () => unknown; _getsockname?: () => unknown };
  linked._parent = tcp;
  const addresses = tcp as Socket & { _getpeername: () => unknown; _getsockname: () => unknown };
  linked._getpeername = () => addresses._getpeername();
  linked._getsockname = () => addresses._getsockname();
}

/** The accepted TCP socket under a server-side TLS socket (gated or not), or undefined. */
export function acceptedSocketOf(socket: TLSSocket): Socket | undefined {
  return gateOf(socket)?.raw ?? (socket as Gated)._parent ?? undefined;
}

/** Gates every connection `server` accepts; `onRefused` is told of each gate that closed its connection. */
export function gateServerConnections(server: Server, onRefused: (gate: HandshakeGate) => void): void {
  const [accept] = server.listeners('connection') as Array<(this: Server, socket: unknown) => void>;
  if (accept === undefined) throw new Error('the TLS server has no connection handler to gate');
  server.removeListener('connection', accept);
  server.prependListener('connection', function (this: Server, raw: Socket) {
    accept.call(this, new HandshakeGate(raw, onRefused));
  });
  // before any other 'keylog' listener: they read the TCP socket under the TLS one
  server.prependListener('keylog', (line: Buffer, socket: TLSSocket) => {
    const gate = gateOf(socket);
    const secret = gate === undefined ? undefined : keylogSecret(line, SECRET_LABEL);
    if (secret !== undefined) gate?.useSecret(secret);
  });
}
