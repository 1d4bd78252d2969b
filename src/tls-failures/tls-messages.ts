// Reads the two TLS handshake messages the handshake gate (handshake-gate.ts) needs, from their
// bytes and without OpenSSL: a certificate message's certificates (RFC 8446 4.4.2 for TLS 1.3,
// whose entries carry extensions; RFC 5246 7.4.2 for TLS 1.2), and the version a ServerHello
// settles (RFC 8446 4.1.3: TLS 1.3 is said by the supported_versions extension, also in a
// HelloRetryRequest).

/** The certificates of a certificate message's body, or undefined when it is malformed. */
export function certificatesOf(body: Buffer, tls13: boolean): Buffer[] | undefined {
  let at = 0;
  if (tls13) at = 1 + (body[0] ?? 0); // certificate_request_context
  if (body.length < at + 3) return undefined;
  const end = at + 3 + body.readUIntBE(at, 3);
  if (end !== body.length) return undefined;
  const certificates: Buffer[] = [];
  for (at += 3; at < end; ) {
    if (end - at < 3) return undefined;
    const length = body.readUIntBE(at, 3);
    if (length === 0 || at + 3 + length > end) return undefined;
    certificates.push(body.subarray(at + 3, at + 3 + length));
    at += 3 + length;
    if (tls13) {
      if (end - at < 2) return undefined;
      at += 2 + body.readUInt16BE(at);
    }
  }
  return at === end ? certificates : undefined;
}

export const SERVER_HELLO = 2;
const SUPPORTED_VERSIONS = 43;

/**
 * The version our own server's first bytes (its records, from the start: what OpenSSL writes)
 * settle: 'tls13', 'tls12', or undefined while the ServerHello is not whole. Anything that is no
 * ServerHello reads as 'tls12' (no TLS 1.3 flight follows it).
 */
export function serverHelloVersion(bytes: Buffer): 'tls13' | 'tls12' | undefined {
  if (bytes.length < 9) return undefined;
  if (bytes[0] !== 22 || bytes[5] !== SERVER_HELLO) return 'tls12';
  const length = bytes.readUIntBE(6, 3);
  // our own ServerHello (OpenSSL's) spans its first record: read it from that record's payload
  if (bytes.length < 9 + length) return undefined;
  return serverHelloBodyVersion(bytes.subarray(9, 9 + length));
}

/**
 * The version a whole ServerHello message's body settles (a HelloRetryRequest's too): 'tls13'
 * when its supported_versions extension says so, else 'tls12'. A peer's ServerHello may come
 * over several records: read it once its handshake message is whole, never from one record.
 */
export function serverHelloBodyVersion(hello: Buffer): 'tls13' | 'tls12' {
  // legacy_version (2), random (32), legacy_session_id <0..32>, cipher_suite (2), compression (1), extensions <0..2^16-1>
  let at = 34;
  if (hello.length < at + 1) return 'tls12';
  at += 1 + (hello[at] as number) + 3;
  if (hello.length < at + 2) return 'tls12';
  const end = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  for (at += 2; at + 4 <= end; ) {
    const type = hello.readUInt16BE(at);
    const size = hello.readUInt16BE(at + 2);
    if (type === SUPPORTED_VERSIONS && size === 2 && at + 6 <= end) return hello.readUInt16BE(at + 4) === 0x0304 ? 'tls13' : 'tls12';
    at += 4 + size;
  }
  return 'tls12';
}
