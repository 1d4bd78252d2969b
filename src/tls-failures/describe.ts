// A failed handshake in words a service owner acts on: who was on the other end, and what was
// wrong with them (no certificate; a certificate from an unknown CA, naming its issuer and key
// id; expired at T; not valid before T; no usable SPIFFE ID; the wrong one; not TLS, or no
// common TLS version or ALPN protocol; a certificate its extensions or an issuer's constraints
// forbid, with OpenSSL's verdict; the peer refusing our certificate). Called where a
// failure is counted; never throws.

import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { clip } from '../clip.js';
import { describeError } from '../errors.js';
import type { TlsFailureDetail, TlsFailureReason } from '../metrics/traffic.js';
import { KEY_USAGE, keyUsageBits } from '../pki/cert-extensions.js';
import { uriSans } from '../pki/x509-read.js';
import { authorityKeyId, peerCertificateOf, peerCertificateOfError, remoteOf } from './peer-certificate.js';

type Who = 'caller' | 'server';

function codeOf(cause: unknown): string | undefined {
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function oneLine(text: string): string {
  // OpenSSL's messages carry a source path after a newline: the first line is the sentence
  return text.split('\n')[0]?.trim() ?? '';
}

/**
 * The most of one certificate field or error text a failure's words carry: what an
 * unauthenticated peer's certificate says (a URI SAN, a subject, an issuer, an error quoting
 * them) reaches the warn log and /debug/tls, and a peer must not size those (a 30 KB URI SAN
 * made a 30 KB line).
 */
export const MAX_DESCRIBED = 256;

/** `spiffe://mesh.local/svc/x` or, without one URI SAN, the subject. */
function whoseCertificate(cert: X509Certificate): string {
  const uris = uriSans(cert);
  return uris.length === 1 ? clip(uris[0] as string, MAX_DESCRIBED) : `subject "${clip(cert.subject.replace(/\n/g, ', '), MAX_DESCRIBED)}"`;
}

function iso(date: string): string {
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? date : new Date(ms).toISOString();
}

function protocolWords(code: string | undefined, who: Who, fallback: string): string {
  // dialling out, the first bytes back were no TLS record: a plain-text server (often HTTP) on that port
  if (who === 'server' && code && /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST/.test(code)) return `protocol mismatch: the server does not speak TLS (a plain HTTP port, such as an app's own?): the endpoint is no meshcar inbound listener`;
  if (code && /HTTP_REQUEST|HTTPS_PROXY_REQUEST/.test(code)) return 'protocol mismatch: plain HTTP sent to a TLS port (send it to the sidecar\'s outbound port, or use TLS with a client certificate)';
  if (who === 'server' && code && /NO_APPLICATION_PROTOCOL/.test(code)) return 'protocol mismatch: the server speaks no HTTP/2 (no ALPN h2, which meshcar asks for): the endpoint is no meshcar inbound listener';
  if (code && /NO_APPLICATION_PROTOCOL/.test(code)) return 'protocol mismatch: no ALPN protocol in common (meshcar speaks h2 and http/1.1)';
  if (code && /UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|PROTOCOL_VERSION|VERSION_TOO_LOW/.test(code)) return 'protocol mismatch: no TLS version in common (TLS 1.2 or 1.3 required)';
  if (code && /KEY_SHARE|SHARED_GROUPS|SIGNATURE_ALGORITHM/.test(code)) return 'protocol mismatch: no key-exchange group or signature algorithm in common (meshcar offers X25519, P-256, P-384 and ECDSA or RSA signatures)';
  return `protocol mismatch: ${fallback}`;
}

/**
 * The peer's TLS alert about a certificate: it refused OURS (its verification sends the alert),
 * which OpenSSL's text ("tlsv1 alert unknown ca") reads like a verdict on the peer's own.
 */
const CERTIFICATE_ALERT = /_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/;

function refusedOurs(code: string | undefined, who: Who): string | undefined {
  const alert = code === undefined ? undefined : CERTIFICATE_ALERT.exec(code)?.[1];
  if (alert === undefined) return undefined;
  const why =
    alert === 'UNKNOWN_CA'
      ? 'its trust bundle does not hold the root our certificate chains to (a bundle from before a CA rotation, or another CA\'s?)'
      : alert === 'CERTIFICATE_EXPIRED'
        ? 'it takes our certificate for expired (a clock out of step, or our SVID not renewed?)'
        : 'check its trust bundle and our SVID';
  return `the ${who} refused our certificate (TLS alert "${alert.toLowerCase().replace(/_/g, ' ')}"): ${why}`;
}

/**
 * OpenSSL's verdict on a certificate path (Node's code; OpenSSL's text where Node says
 * UNSPECIFIED) in words, continuing "the caller's certificate (...), issued by ...,".
 */
function verdictWords(code: string | undefined, text: string, who: Who, cert: X509Certificate | undefined): string {
  const use = who === 'caller' ? 'client' : 'server';
  if (code === 'INVALID_PURPOSE') return `is not for TLS ${use} authentication: ${purposeWords(use, cert)}`;
  if (code === 'PATH_LENGTH_EXCEEDED') return "comes through more intermediate CAs than an issuer's path length constraint allows (an intermediate CA under an issuer that may sign only leaves, as meshcar's?)";
  if (code === 'INVALID_CA' || /certificate signing/.test(text)) return 'was signed by a certificate that is no CA (basicConstraints CA:FALSE, or a keyUsage without keyCertSign): a leaf used as an issuer?';
  if (code === 'CERT_CHAIN_TOO_LONG') return 'comes with a longer chain than verification follows';
  if (/subtree violation|name (constraint )?syntax|name constraint/.test(text)) return "has a name an issuer's name constraints do not allow";
  if (/digital signature/.test(text)) return 'has a keyUsage without digitalSignature, which a TLS peer signs with';
  if (/critical extension/.test(text)) return 'carries a critical extension that TLS verification does not know';
  if (/key too weak/.test(text)) return "has a key, or an issuer has one, too weak for meshcar's TLS (RSA under 2048 bits, EC under 224: OpenSSL security level 2)";
  if (/digest algorithm too weak/.test(text)) return 'was signed with a digest too weak (SHA-1 or MD5) by an issuer';
  return 'failed the chain check';
}

const EKU_FOR = { client: '1.3.6.1.5.5.7.3.2', server: '1.3.6.1.5.5.7.3.1' } as const;

/**
 * Why OpenSSL's purpose check refused a certificate for TLS `use`: it reads the keyUsage
 * (digitalSignature, which the peer signs the handshake with) as well as the extended key usage
 * of the leaf and of its issuers, and says INVALID_PURPOSE for each alike. The leaf's own
 * extensions tell which; when both allow the use, an issuer's extended key usage refused it.
 */
function purposeWords(use: 'client' | 'server', cert: X509Certificate | undefined): string {
  const eku = cert?.keyUsage;
  if (eku !== undefined && !eku.includes(EKU_FOR[use])) return `its extended key usage lacks ${use}Auth`;
  // OpenSSL's keyUsage bits for the use: digitalSignature or keyAgreement for a client; a server may also have keyEncipherment
  const bits = cert === undefined ? undefined : keyUsageBits(cert.raw);
  if (bits !== undefined && (bits & KU_ALLOWING[use]) === 0) return `its keyUsage has none of ${use === 'client' ? 'digitalSignature and keyAgreement' : 'digitalSignature, keyEncipherment and keyAgreement'}, which a TLS ${use} needs`;
  // the certificate's own allow it: an issuer's extended key usage refused it, or the certificate's old nsCertType
  if (cert !== undefined) return `an issuer's extended key usage lacks ${use}Auth (the certificate's own allows it), or its nsCertType forbids it`;
  return `its extended key usage, or an issuer's, lacks ${use}Auth, or its keyUsage forbids it`;
}

/** keyUsage bits (the first octet) OpenSSL's TLS purpose checks accept per use. */
const KU_ALLOWING = { client: KEY_USAGE.digitalSignature | 0x08, server: KEY_USAGE.digitalSignature | 0x20 | 0x08 } as const;

/** A certificate refused by the chain check: which one, what is wrong with it, and OpenSSL's own verdict. */
function chainWords(who: Who, cert: X509Certificate | undefined, cause: unknown, said: string): string {
  const code = codeOf(cause);
  const message = (cause as { message?: unknown } | null | undefined)?.message;
  const text = typeof message === 'string' ? clip(oneLine(message), MAX_DESCRIBED) : said;
  const issuer = cert ? `, issued by "${clip(cert.issuer.replace(/\n/g, ', '), MAX_DESCRIBED)}",` : '';
  const openssl = `(OpenSSL: "${text || 'no reason given'}"${code && code !== 'UNSPECIFIED' ? `, ${code}` : ''})`;
  return `the ${who}'s certificate${cert ? ` (${whoseCertificate(cert)})` : ''}${issuer} ${verdictWords(code, text, who, cert)} ${openssl}`;
}

/** The words for one failure; `cert` is the peer's certificate when it was seen. */
export function failureWords(reason: TlsFailureReason, who: Who, cert: X509Certificate | undefined, cause: unknown): string {
  const code = codeOf(cause);
  const said = cause === undefined ? '' : clip(oneLine(typeof cause === 'string' ? cause : describeError(cause)), MAX_DESCRIBED);
  const its = `the ${who}'s certificate${cert ? ` (${whoseCertificate(cert)})` : ''}`;
  switch (reason) {
    case 'no_client_cert':
      return 'no client certificate: the caller presented none (a client calling the inbound port directly, without a sidecar of its own?)';
    case 'unknown_ca': {
      if (!cert) return `certificate from an unknown CA: ${its} does not chain to our trust bundle${code ? ` (${code})` : ''}`;
      const keyId = authorityKeyId(cert);
      return `certificate from an unknown CA: ${its} was issued by "${clip(cert.issuer.replace(/\n/g, ', '), MAX_DESCRIBED)}"${keyId ? ` (key id ${keyId})` : ''}, which is not in our trust bundle`;
    }
    case 'expired':
      // the path's own verdict first: on a resumed session it may be the issuer that expired
      if (/expired at/.test(said)) return `${its} ${said.replace(/^the peer certificate( path)? /, 'path ')}`;
      if (!cert) return `${its} has expired`;
      // OpenSSL says CERT_HAS_EXPIRED for any certificate of the path: the leaf's own date, still
      // ahead, was once quoted as the time it "expired"
      if (Date.parse(cert.validTo) > Date.now()) return `${its} is valid until ${iso(cert.validTo)}, but an issuer on its path has expired (an intermediate CA it sent, or a root of the trust bundle): renew that issuer, or send the chain of its successor`;
      return `${its} expired at ${iso(cert.validTo)}`;
    case 'not_yet_valid':
      if (!cert) return `${its} is not valid yet: ${said}`;
      if (Date.parse(cert.validFrom) <= Date.now()) return `${its} is valid since ${iso(cert.validFrom)}, but an issuer on its path is not valid yet (a clock out of step, or an issuer made with a date ahead?)`;
      return `${its} is not valid before ${iso(cert.validFrom)} (a clock out of step?)`;
    case 'bad_identity':
      return `no usable SPIFFE ID: ${said}`;
    case 'identity_mismatch':
      return `identity mismatch: ${said}`;
    case 'protocol':
      return protocolWords(code, who, said);
    case 'handshake_timeout':
      if (who === 'server') return 'no TLS handshake: the server took the TCP connection and never finished the TLS handshake within the connect timeout (a hung or half-dead process, or something that is no sidecar on its port)';
      return `no TLS handshake within the handshake timeout: the ${who} connected and sent no ClientHello, or stopped halfway (a stuck client, a health check that only opens the port, or a slowloris)`;
    case 'invalid_certificate':
      return `invalid certificate: ${chainWords(who, cert, cause, said)}`;
    default:
      // a verdict Node has no code for, and none of the invalid_certificate kind: still a verdict on that certificate
      if (code === 'UNSPECIFIED') return `certificate refused: ${chainWords(who, cert, cause, said)}`;
      return refusedOurs(code, who) ?? `TLS handshake failed: ${said || 'no reason given'}`;
  }
}

/** `address:port` as a failure names its peer (`[v6]:port`; an IPv4-mapped address as IPv4). */
export function hostPort(address: string | undefined, port: number | undefined): string {
  if (!address) return 'unknown';
  const host = address.startsWith('::ffff:') ? address.slice(7) : address;
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`;
}

/** An inbound failure: the caller on `socket`, refused for `reason`, with what said why. */
export function inboundFailure(socket: TLSSocket, reason: TlsFailureReason, cause: unknown): TlsFailureDetail {
  const remote = remoteOf(socket);
  return { peer: hostPort(remote.address, remote.port), message: failureWords(reason, 'caller', peerCertificateOf(socket), cause) };
}

/** An outbound failure: the dial to `endpoint` (host:port) failed with `err`. */
export function outboundFailure(endpoint: string, reason: TlsFailureReason, err: unknown): TlsFailureDetail {
  return { peer: endpoint, message: failureWords(reason, 'server', peerCertificateOfError(err), err) };
}
