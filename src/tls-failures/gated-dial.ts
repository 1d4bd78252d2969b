// Puts a HandshakeGate (handshake-gate.ts) under a TLS socket the outbound dials, so that an
// upstream's certificates are judged before OpenSSL parses them, as a caller's are on the inbound
// (gated-server.ts): OpenSSL's client parses whatever certificate message the server sends, and
// one crafted message held a core for tens of seconds of a single dial, every request of the
// sidecar waiting behind it. The gate reads the server's TLS 1.3 flight with the server's
// handshake secret, from the client socket's 'keylog' event. As on the inbound, the TLS socket
// over a JS stream no longer knows its TCP socket: `_parent` and the addresses are set here.

import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import tls, { type ConnectionOptions, type TLSSocket } from 'node:tls';
import { HandshakeGate } from './handshake-gate.js';
import { linkToTcp } from './gated-server.js';
import { keylogSecret } from './tls13-records.js';

const SECRET_LABEL = Buffer.from('SERVER_HANDSHAKE_TRAFFIC_SECRET');
const dialGates = new WeakMap<TLSSocket, HandshakeGate>();

/**
 * Dials TLS over `tcp` through a gate: the TLS socket, whose handshake fails when the gate
 * refuses the server's certificates (the TCP connection closed; `gateOfDial` says why).
 */
export function gatedTlsConnect(tcp: Socket, options: Omit<ConnectionOptions, 'socket'>): TLSSocket {
  // a refusal fails the handshake at once (the TLS socket over a JS stream is not told that its TCP socket closed)
  const gate = new HandshakeGate(tcp, () => socket.destroy(Object.assign(new Error(`the server's handshake was refused before OpenSSL read it: ${gate.refusal}`), { code: 'ERR_MESHCAR_HANDSHAKE_REFUSED' })), 'client');
  const socket: TLSSocket = tls.connect({ ...options, socket: gate as unknown as Duplex });
  dialGates.set(socket, gate);
  linkToTcp(socket, tcp);
  const onKeylog = (line: Buffer): void => {
    const secret = keylogSecret(line, SECRET_LABEL);
    if (secret === undefined) return;
    socket.off('keylog', onKeylog);
    gate.useSecret(secret);
  };
  socket.on('keylog', onKeylog);
  return socket;
}

/** The gate under a TLS socket gatedTlsConnect made (undefined for any other). */
export function gateOfDial(socket: TLSSocket): HandshakeGate | undefined {
  return dialGates.get(socket);
}
