// OpenSSL and Node error codes of a failed TLS handshake → the reason label. One list, used by
// the inbound listener, the outbound dial and peer-identity's verdict on a client certificate.

import type { TlsFailureReason } from '../metrics/traffic.js';

const UNKNOWN_CA = /UNABLE_TO_GET_ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_REJECTED/;
/**
 * Not TLS at all, or no TLS version, cipher, key-exchange group, signature algorithm or ALPN
 * protocol in common. (A TLS 1.2 caller without a common group gets "no shared cipher", a TLS
 * 1.3 one "no suitable key share": the same mismatch.)
 */
const PROTOCOL = /HTTP_REQUEST|HTTPS_PROXY_REQUEST|NO_APPLICATION_PROTOCOL|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|PROTOCOL_VERSION|NO_SHARED_CIPHER|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW|PACKET_LENGTH_TOO_LONG|NO_SUITABLE_KEY_SHARE|NO_SHARED_GROUPS|NO_SUITABLE_SIGNATURE_ALGORITHM|NO_SHARED_SIGNATURE_ALGORITHMS/;

/** The reason for a handshake error or verification code; undefined when it is not a TLS failure. */
export function classifyTlsErrorCode(code: string | undefined): TlsFailureReason | undefined {
  if (!code) return undefined;
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return 'no_client_cert';
  if (code === 'CERT_HAS_EXPIRED') return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not_yet_valid';
  if (UNKNOWN_CA.test(code)) return 'unknown_ca';
  if (PROTOCOL.test(code)) return 'protocol';
  // a peer that connected and never finished its handshake (none, or half a ClientHello): a
  // stuck client, or a slowloris at the TLS layer, told apart from handshakes that failed
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (code.startsWith('ERR_SSL_') || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'other';
  return undefined;
}
