// Plain HTTP sent to a TLS port (`curl http://` to the inbound or the CA) is answered, not cut:
// OpenSSL recognises the request's first bytes (ERR_SSL_HTTP_REQUEST for GET, POST, HEAD and
// PUT; ERR_SSL_HTTPS_PROXY_REQUEST for CONNECT) and the handshake fails, which Node ends by
// destroying the socket, so the client read "Empty reply from server". As Go's TLS servers
// answer such a request ("Client sent an HTTP request to an HTTPS server."), a plain HTTP/1.1
// 400 with meshcar's JSON error body saying where to send it is written on the TCP socket
// under the failed TLS one, which then closes as every early answer does (lingering-close.ts):
// our FIN, what the client still sends read and dropped until it closes or at most LINGER_MS,
// then the socket destroyed; never a reset that would throw the answer away unread, never a
// socket held beyond that bound (Node would destroy it with the failed TLS layer: that layer's
// close waits for it instead). Anything else that is not TLS is closed at once, as before.

import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { MeshcarError } from '../errors.js';
import { rawErrorResponse } from '../http/status.js';
import { lingeringClose } from '../http/lingering-close.js';
import { gateOf } from './gated-server.js';
import type { HandshakeGate } from './handshake-gate.js';

/** Which TLS port was sent plain HTTP: each says what to do instead. */
export type PlainHttpPort = 'inbound' | 'ca';

const INSTEAD: Readonly<Record<PlainHttpPort, { readonly port: string; readonly instead: string }>> = {
  inbound: {
    port: "meshcar's inbound port, which takes only mutual TLS from other sidecars",
    instead: "send plain HTTP to the outbound port of the calling service's own sidecar, which carries it here over mutual TLS",
  },
  ca: {
    port: 'the meshcar CA, which speaks HTTPS only',
    instead: "use https:// on the same address, trusting the CA's bundle.pem (curl --cacert bundle.pem https://...)",
  },
};

/** The words of the answer to plain HTTP (a request, or a proxy's CONNECT) on `port`. */
export function plainHttpMessage(port: PlainHttpPort, proxyRequest: boolean): string {
  const { port: where, instead } = INSTEAD[port];
  return `${proxyRequest ? 'an HTTP proxy request (CONNECT) sent as plain HTTP' : 'plain HTTP sent'} to ${where}: ${instead}`;
}

/** Node 20's TLS server socket: the TCP socket under it, and the TLS layer (TLSWrap) over that socket's handle. */
interface TlsLayer {
  _parent?: unknown;
  _parentWrap?: unknown;
  destroySSL?: () => void;
  close?: (callback?: () => void) => void;
}
type FailedTlsSocket = TLSSocket & { _parent?: unknown; _handle?: TlsLayer | null };

/**
 * Answers a handshake that failed on plain HTTP (`err.code`, from the server's 'tlsClientError')
 * with a 400 on the TCP socket under `socket`, which then closes within the linger's bound; true
 * when it did. False for any other failure, or a socket that is not as Node 20 leaves it (the
 * caller closes it, as before).
 */
export function answerPlainHttp(err: { code?: string }, socket: TLSSocket, port: PlainHttpPort): boolean {
  if (err.code !== 'ERR_SSL_HTTP_REQUEST' && err.code !== 'ERR_SSL_HTTPS_PROXY_REQUEST') return false;
  const gate = gateOf(socket);
  if (gate !== undefined) return answerUnderGate(gate, port, err.code === 'ERR_SSL_HTTPS_PROXY_REQUEST');
  const failed = socket as FailedTlsSocket;
  const raw = failed._parent;
  const tlsLayer = failed._handle;
  // Node has begun closing the TLS socket (its TLS layer closes in a microtask after this
  // event), and would destroy the TCP socket with it: only while both are as that close expects
  if (!socket.destroyed || !(raw instanceof Socket) || raw.destroyed || !raw.writable) return false;
  if (tlsLayer === null || tlsLayer === undefined || tlsLayer._parentWrap !== raw || tlsLayer._parent !== (raw as { _handle?: unknown })._handle) return false;
  if (typeof tlsLayer.destroySSL !== 'function' || typeof tlsLayer.close !== 'function') return false;
  closeTlsLayerAfter(tlsLayer, tlsLayer.close, raw);
  // the TLS layer lets go of the TCP stream: what the client still sends (a POST's body, its
  // FIN) reaches the TCP socket, to be dropped, where the failed TLS layer swallowed it
  tlsLayer.destroySSL();
  raw.write(rawErrorResponse(new MeshcarError('bad_request', plainHttpMessage(port, err.code === 'ERR_SSL_HTTPS_PROXY_REQUEST'))));
  lingeringClose(raw);
  return true;
}

/** The same answer on a gated server (gated-server.ts): the gate lets go of the TCP socket, which the TLS socket's close then leaves alone. */
function answerUnderGate(gate: HandshakeGate, port: PlainHttpPort, proxyRequest: boolean): boolean {
  const raw = gate.raw;
  if (raw.destroyed || !raw.writable) return false;
  gate.detach();
  raw.write(rawErrorResponse(new MeshcarError('bad_request', plainHttpMessage(port, proxyRequest))));
  lingeringClose(raw);
  return true;
}

/**
 * The TLS layer's close destroys the TCP socket under it at once. For this one layer it is put
 * off until the TCP socket has closed by itself (its linger's end): Node's close then finds it
 * closed and only frees the TLS state, and the TLS socket's 'close' follows. Nothing else about
 * the TCP socket changes: every destroy of it is the real one.
 */
function closeTlsLayerAfter(tlsLayer: TlsLayer, close: NonNullable<TlsLayer['close']>, raw: Socket): void {
  tlsLayer.close = function closeOnceTcpClosed(this: TlsLayer, callback?: () => void): void {
    if (raw.closed) close.call(this, callback);
    else raw.once('close', () => close.call(this, callback));
  };
}
