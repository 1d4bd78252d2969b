// Opens the records a TLS 1.3 peer protects with its handshake traffic secret, so that the
// certificates in them can be judged before OpenSSL parses them (handshake-gate.ts). The secret
// comes from Node's 'keylog' event; the keys and nonces are RFC 8446's: HKDF-Expand-Label
// (section 7.1), the traffic key and IV (7.3), the per-record nonce and the record header as
// additional data (5.2, 5.3). Only the three suites meshcar offers (identity/tls-contexts.ts).

import { createDecipheriv, createHmac, type CipherGCMTypes, type DecipherGCM } from 'node:crypto';

interface Suite {
  readonly cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  readonly hash: 'sha256' | 'sha384';
  readonly keyLength: number;
}

const AES_128_GCM: Suite = { cipher: 'aes-128-gcm', hash: 'sha256', keyLength: 16 };
const CHACHA20_POLY1305: Suite = { cipher: 'chacha20-poly1305', hash: 'sha256', keyLength: 32 };
const AES_256_GCM: Suite = { cipher: 'aes-256-gcm', hash: 'sha384', keyLength: 32 };
const TAG_BYTES = 16;
const IV_BYTES = 12;

/** HKDF-Expand-Label(secret, label, "", length): one HMAC block covers a key or an IV. */
function expandLabel(hash: Suite['hash'], secret: Buffer, label: string, length: number): Buffer {
  const name = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.alloc(2 + 1 + name.length + 1 + 1);
  info.writeUInt16BE(length, 0);
  info[2] = name.length;
  name.copy(info, 3);
  info[3 + name.length] = 0; // empty context
  info[4 + name.length] = 1; // HKDF-Expand's first block counter
  return createHmac(hash, secret).update(info).digest().subarray(0, length);
}

interface Keys {
  readonly suite: Suite;
  readonly key: Buffer;
  readonly iv: Buffer;
}

function keysFor(suite: Suite, secret: Buffer): Keys {
  return { suite, key: expandLabel(suite.hash, secret, 'key', suite.keyLength), iv: expandLabel(suite.hash, secret, 'iv', IV_BYTES) };
}

/** A record's inner plaintext: its content and real content type (RFC 8446 5.2). */
export interface OpenedRecord {
  readonly type: number;
  readonly content: Buffer;
}

export class RecordOpener {
  /** The candidates until a record opens: a 32-byte secret is AES-128-GCM's or ChaCha20-Poly1305's. */
  private candidates: readonly Keys[];
  private sequence = 0;

  constructor(secret: Buffer) {
    this.candidates = secret.length === 48 ? [keysFor(AES_256_GCM, secret)] : [keysFor(AES_128_GCM, secret), keysFor(CHACHA20_POLY1305, secret)];
  }

  /** Opens one protected record (`header`: its 5 bytes; `payload`: what follows); undefined when it does not open with the handshake key. */
  open(header: Buffer, payload: Buffer): OpenedRecord | undefined {
    if (payload.length < TAG_BYTES + 1) return undefined;
    for (const keys of this.candidates) {
      const plain = this.tryOpen(keys, header, payload);
      if (plain === undefined) continue;
      this.candidates = [keys];
      this.sequence++;
      // the content type is the last non-zero byte; zeros after it are padding
      let end = plain.length;
      while (end > 0 && plain[end - 1] === 0) end--;
      if (end === 0) return undefined;
      return { type: plain[end - 1] as number, content: plain.subarray(0, end - 1) };
    }
    return undefined;
  }

  private tryOpen(keys: Keys, header: Buffer, payload: Buffer): Buffer | undefined {
    const nonce = Buffer.from(keys.iv);
    // the record's 64-bit sequence number, XORed into the IV's last bytes
    const high = Math.floor(this.sequence / 2 ** 32);
    const low = this.sequence >>> 0;
    nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ high) >>> 0, 4);
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ low) >>> 0, 8);
    const sealed = payload.subarray(0, payload.length - TAG_BYTES);
    try {
      // (typed as GCM: ChaCha20-Poly1305's decipher has the same calls)
      const decipher: DecipherGCM = createDecipheriv(keys.suite.cipher as CipherGCMTypes, keys.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(header, { plaintextLength: sealed.length });
      decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed), decipher.final()]);
    } catch {
      return undefined; // the tag did not match: not this key, or not a record of this flight
    }
  }
}

/**
 * The secret of a 'keylog' line of `label` (NSS key log format: `<label> <client random, hex>
 * <secret, hex>`), or undefined for a line of another label.
 */
export function keylogSecret(line: Buffer, label: Buffer): Buffer | undefined {
  if (line.length <= label.length || line[label.length] !== 0x20 || !line.subarray(0, label.length).equals(label)) return undefined;
  const secret = line.toString('latin1').trim().split(' ')[2];
  return secret === undefined ? undefined : Buffer.from(secret, 'hex');
}
