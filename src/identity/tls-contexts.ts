// TLS material for one identity version: the options servers are (re)configured with and the
// ready SecureContext clients reuse. Built once per SVID, never per connection: building a
// context parses the key and every certificate again.

import { constants } from 'node:crypto';
import tls from 'node:tls';
import type { Svid } from './svid.js';

// TLS 1.3 suites are always offered by OpenSSL; for TLS 1.2 only forward-secret AEAD suites
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const TLS13_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

// Handshake signatures with SHA-256 or stronger only: OpenSSL's default security level still
// signs and accepts ECDSA and RSA with SHA-224 on TLS 1.2, and our CA signs with SHA-256 at the
// least. RSA stays (PKCS#1 v1.5 on TLS 1.2, PSS on both) for workloads whose `identity.files`
// certificates an operator's RSA CA issued.
const SIGALGS = [
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
  'ed25519',
  'ed448',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'rsa_pss_pss_sha256',
  'rsa_pss_pss_sha384',
  'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
].join(':');

/**
 * No TLS 1.2 renegotiation either way (OpenSSL answers no_renegotiation): each one is a full
 * handshake on a connection the inbound's per-address handshake cap no longer counts (Node
 * alone allows three per connection every 10 minutes), a caller could present another
 * certificate in it than the one its connection was authorized on, and HTTP/2 forbids it
 * (RFC 9113 §9.2.1). A server that adds secure options of its own must keep this bit.
 */
export const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION;

/** Server-wide mutual TLS: every caller must present a certificate that chains to the bundle. */
export const MTLS_SERVER_OPTIONS = Object.freeze({ requestCert: true, rejectUnauthorized: true });

export interface IdentityTls {
  /** For tls.createServer / https.createServer / http2.createSecureServer and setSecureContext. */
  readonly options: Readonly<tls.SecureContextOptions>;
  /** For tls.connect / http2.connect ({ secureContext }): one shared context per identity version. */
  readonly secureContext: tls.SecureContext;
  /**
   * The trust bundle these verify peers against (PEM): what a window worked out for a peer's
   * path holds under (peer-identity.ts keeps such windows per bundle).
   */
  readonly anchorsPem: string;
}

/**
 * Versions, ciphers, groups and secure options of every meshcar TLS endpoint: both sidecar
 * hops and the CA's HTTPS port (which every workload reaches, and renews over).
 */
export const TLS_POLICY = Object.freeze({
  minVersion: 'TLSv1.2',
  // security level 2 (112 bits): Node's OpenSSL defaults to 1, which takes a peer's RSA-1024
  // key (80 bits) from any issuer of an identity.files bundle, where our CA signs none under
  // 2048 bits; also an issuer's or root's key below it, and SHA-1 signatures (validateSvid
  // refuses such material of our own at load, in words)
  ciphers: `${TLS13_CIPHERS}:${TLS12_CIPHERS}:@SECLEVEL=2`,
  ecdhCurve: 'X25519:P-256:P-384',
  sigalgs: SIGALGS,
  honorCipherOrder: true,
  secureOptions: SECURE_OPTIONS,
} satisfies tls.SecureContextOptions);

export function secureContextOptions(svid: Svid): tls.SecureContextOptions {
  return {
    key: svid.privateKeyPem,
    // the full chain, leaf then issuer: peers trust only roots, so without the issuer in the
    // handshake no one could build the path
    cert: svid.chainPem,
    ca: svid.bundlePem,
    ...TLS_POLICY,
  };
}

/** Throws if OpenSSL rejects the material (callers validate first, so that means a bug). */
export function buildIdentityTls(svid: Svid): IdentityTls {
  const options = Object.freeze(secureContextOptions(svid));
  return Object.freeze({ options, secureContext: tls.createSecureContext(options), anchorsPem: svid.bundlePem });
}
