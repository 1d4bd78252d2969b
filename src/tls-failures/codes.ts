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

/**
 * Chain verification codes (Node's names for OpenSSL's X509_V_ERR_*) of a certificate its own
 * extensions or an issuer's constraints forbid for this use: the wrong extended key usage, a
 * path longer than an issuer's path length allows, an issuer that is no CA, a chain deeper than
 * the verification depth.
 */
const INVALID_CERTIFICATE = /^(INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|INVALID_CA|CERT_CHAIN_TOO_LONG|EE_KEY_TOO_SMALL|CA_KEY_TOO_SMALL|CA_MD_TOO_WEAK)$/;
/**
 * Node names only some of OpenSSL's verification codes and reports the others as UNSPECIFIED,
 * with OpenSSL's text (X509_verify_cert_error_string) as the message: these texts are the same
 * kind of verdict (an issuer without keyCertSign, as a leaf used as an issuer; a name outside
 * an issuer's name constraints; a critical extension OpenSSL does not know; a key or a
 * signature digest under TLS_POLICY's security level).
 */
const INVALID_CERTIFICATE_TEXT = /^(key usage does not include (certificate signing|digital signature)|(permitted|excluded) subtree violation|name constraints minimum and maximum not supported|unsupported name constraint type|unsupported or invalid name (constraint )?syntax|unhandled critical extension|invalid non-CA certificate \(has CA markings\)|proxy path length constraint exceeded|(EE|CA) certificate key too weak|CA signature digest algorithm too weak)$/;

/** The reason for a handshake error or verification code; undefined when it is not a TLS failure. */
export function classifyTlsErrorCode(code: string | undefined): TlsFailureReason | undefined {
  if (!code) return undefined;
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return 'no_client_cert';
  if (code === 'CERT_HAS_EXPIRED') return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not_yet_valid';
  if (UNKNOWN_CA.test(code)) return 'unknown_ca';
  if (PROTOCOL.test(code)) return 'protocol';
  if (INVALID_CERTIFICATE.test(code)) return 'invalid_certificate';
  // a verification code Node has no name for: a verdict all the same (its text says which, classifyVerdict)
  if (code === 'UNSPECIFIED') return 'other';
  // a peer that connected and never finished its handshake (none, or half a ClientHello): a
  // stuck client, or a slowloris at the TLS layer, told apart from handshakes that failed
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (code.startsWith('ERR_SSL_') || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'other';
  return undefined;
}

/**
 * The reason for a chain verification verdict: Node's Error (code and OpenSSL's text), or the
 * code alone as a server's socket.authorizationError holds it. Undefined when it is none.
 */
export function classifyVerdict(verdict: unknown): TlsFailureReason | undefined {
  if (typeof verdict === 'string') return classifyTlsErrorCode(verdict);
  const { code, message } = (verdict ?? {}) as { code?: unknown; message?: unknown };
  if (code === 'UNSPECIFIED' && typeof message === 'string' && INVALID_CERTIFICATE_TEXT.test(message)) return 'invalid_certificate';
  return classifyTlsErrorCode(typeof code === 'string' ? code : undefined);
}
