// The peer's leaf certificate, as DER, read out of the TLS session Node hands over
// (socket.getSession(): OpenSSL's i2d_SSL_SESSION). The inbound needs only a key for its cache
// of parsed caller certificates on each new connection, and the ways Node offers cost far more
// on OpenSSL 3.0: getPeerCertificate() builds an object with three fingerprints and the public
// key exported to a legacy EC_KEY (150-240 µs on a fresh connection here), getPeerX509Certificate()
// copies every issuer the peer presented, decoding each key again (~400 µs); the session's DER
// is written from encodings OpenSSL keeps (~35-45 µs).
//
// SSL_SESSION ::= SEQUENCE { version INTEGER, sslVersion INTEGER, cipher OCTET STRING,
//   sessionId OCTET STRING, masterKey OCTET STRING, ... time [1], timeout [2],
//   peer [3] EXPLICIT Certificate OPTIONAL, ... } (OpenSSL ssl/ssl_asn1.c). Only the
// context-specific tag [3] at the top level is looked for; nothing is parsed below it.

import { derLength } from './x509-read.js';

const SEQUENCE = 0x30;
/** [3], constructed: the explicit tag around the peer's certificate. */
const PEER_TAG = 0xa3;

/**
 * The peer certificate's DER inside `session`, as a view into it, or undefined when the
 * session holds none or is not the shape OpenSSL writes. The session also holds the master
 * secret: callers copy what they need and then wipe the buffer.
 */
export function sessionPeerCertificate(session: Buffer): Buffer | undefined {
  if (session[0] !== SEQUENCE) return undefined;
  const [outerLength, outerStart] = derLength(session, 1);
  const end = outerStart + outerLength;
  if (outerLength <= 0 || end > session.length) return undefined;
  let at = outerStart;
  while (at + 2 <= end) {
    const tag = session[at] as number;
    const [length, start] = derLength(session, at + 1);
    if (length < 0 || start + length > end) return undefined;
    if (tag === PEER_TAG) {
      // the certificate itself: one SEQUENCE filling the tag
      if (session[start] !== SEQUENCE) return undefined;
      const [certLength, certStart] = derLength(session, start + 1);
      if (certLength <= 0 || certStart + certLength !== start + length) return undefined;
      return session.subarray(start, start + length);
    }
    at = start + length;
  }
  return undefined;
}
