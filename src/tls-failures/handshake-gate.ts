// Holds a TLS peer's certificates until they are judged, so that OpenSSL never parses a chain
// that costs far more than a mesh SVID path's. OpenSSL decodes every certificate's key as it
// parses the certificate message, before any check and whoever issued it: an EC key with
// explicit parameters over a crafted prime field costs it 130 ms or more in ~400 bytes, and a
// message may hold 100 KB of them (tens of seconds of one core for one handshake). Node 20 has no
// certificate-list limit and no hook before that parse, so the bytes the peer sends go through
// this gate first (as a JS stream under the TLS socket): it reads the records, opens a TLS 1.3
// flight with the peer's handshake secret from Node's 'keylog' event (tls13-records.ts; TLS 1.2
// sends certificates in the clear), and judges the certificate message from its DER (no OpenSSL
// parse): more certificates than a mesh SVID path has, a key no SVID holds or checks that cost
// far more than a mesh path's (costly-chains.ts) close the connection before OpenSSL sees a
// byte of it. Alerts and messages out of their place pass while it reads on (OpenSSL carries on
// past a user_canceled alert); only a judged certificate message, the peer's protected Finished,
// or under TLS 1.2 its ChangeCipherSpec (its one byte: what follows is encrypted) let the bytes
// go straight through; a record of no bytes opens nothing (OpenSSL skips it).
// The bytes are never changed; the gate only holds them back, a bounded number of them.
// Both directions: under the inbound's accepted sockets it reads a caller (gated-server.ts),
// under the outbound's dials an upstream (gated-dial.ts), the same rules for either.

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { judgeCertificateMessage } from './costly-chains.js';
import { RecordOpener } from './tls13-records.js';
import { PendingInput } from './pending-input.js';
import { SERVER_HELLO, serverHelloBodyVersion, serverHelloVersion } from './tls-messages.js';

const CHANGE_CIPHER_SPEC = 20;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const CERTIFICATE = 11;
/** The peer's last handshake message: no certificate comes after it (TLS 1.3 asks a client for one after the handshake only at the server's request, which meshcar never makes; a server sends its certificates once). */
const FINISHED = 20;
/** Records read before the certificates are judged: a hello or two, a ChangeCipherSpec, a certificate message in up to three. More is refused (each costs a copy, and under TLS 1.3 an AEAD open). */
const MAX_RECORDS = 32;
/** A record's largest payload, protected (2^14 + 256) with TLS 1.2's room for expansion. */
const MAX_RECORD_PAYLOAD = 16_384 + 2_048;
/** A mesh path's certificate message is 1-10 KB (four RSA-8192 certificates ~9 KB); more is refused as it is announced. */
export const MAX_CERTIFICATE_MESSAGE = 32 * 1024;
/** What the gate holds at most while it waits for a key or the rest of a message. */
const MAX_HELD = 64 * 1024;

type Mode = 'hello' | 'open' | 'refused' | 'detached';

/** Which end of the handshake the TLS socket above is: a server reads a caller's certificates, a client an upstream's. */
export type GateRole = 'server' | 'client';

/** A peer's TCP connection as the TLS socket reads it: a JS stream over `raw`. */
export class HandshakeGate extends EventEmitter {
  /** Read by Node's JS stream wrap: this stream gives bytes. */
  readonly readableObjectMode = false;
  /** Why the gate closed the connection, once it did. */
  refusal: string | undefined;
  /** What checking the signatures of the certificates it passed costs, by its estimate (ms): charged on a failed handshake (costly-chains.ts). */
  checkedMs = 0;
  /** What the refusal was about: the peer's certificates, or bytes that are no TLS handshake its side makes. */
  refusalReason: 'invalid_certificate' | 'protocol' = 'protocol';
  /** Records read so far, while the gate reads them. */
  private records = 0;
  /** Bytes of the held records. */
  private heldBytes = 0;
  private mode: Mode = 'hello';
  /** Bytes read and not yet examined (an incomplete record, or records waiting for the key). */
  private readonly pending = new PendingInput();
  /** Examined records held back while a certificate message is incomplete. */
  private held: Buffer[] = [];
  /** Handshake bytes not yet a whole message. */
  private messages: Buffer = Buffer.alloc(0);
  private messagesTls13 = false;
  private opener: RecordOpener | undefined;
  /** The TLS socket's listeners, on the TCP socket itself once the gate let bytes straight through. */
  private direct: Array<(chunk: Buffer) => void> = [];
  private readonly forward = (chunk: Buffer): void => void this.emit('data', chunk);

  /**
   * The version the ServerHello settled, undefined until it is known: a server's gate reads it
   * from what the TLS socket writes; a client's from the server's whole ServerHello message
   * (never one record: a ServerHello split over two read as TLS 1.2, and a TLS 1.3 server's
   * ChangeCipherSpec then opened the gate), and OpenSSL's own word overrides it: it logs a
   * server handshake secret only under TLS 1.3.
   */
  private version: 'tls13' | 'tls12' | undefined;
  /** What the TLS socket wrote, until its ServerHello is whole. */
  private written: Buffer = Buffer.alloc(0);

  constructor(
    readonly raw: Socket,
    private readonly onRefused: (gate: HandshakeGate) => void,
    readonly role: GateRole = 'server',
  ) {
    super();
    // the TLS socket above decides when this side ends (a tunnel carries half-closes): the TCP
    // socket must not end its side at the peer's FIN by itself, as Node's does by default
    raw.allowHalfOpen = true;
    raw.on('data', this.onData);
    raw.on('end', () => this.emit('end'));
    raw.on('error', (err) => this.emit('error', err));
    raw.on('close', () => this.emit('close'));
  }

  get readable(): boolean {
    return this.raw.readable;
  }
  get writable(): boolean {
    return this.raw.writable;
  }
  pause(): this {
    if (this.mode !== 'detached') this.raw.pause();
    return this;
  }
  resume(): this {
    if (this.mode !== 'detached') this.raw.resume();
    return this;
  }
  cork(): void {
    this.raw.cork();
  }
  uncork(): void {
    this.raw.uncork();
  }
  write(chunk: Buffer, callback?: (err?: Error | null) => void): boolean {
    if (this.version === undefined && this.role === 'server') this.readServerHello(chunk);
    if (this.mode !== 'detached') return this.raw.write(chunk, callback);
    process.nextTick(() => callback?.());
    return true;
  }
  end(callback?: () => void): this {
    if (this.mode !== 'detached') this.raw.end(callback);
    else process.nextTick(() => callback?.());
    return this;
  }
  destroy(err?: Error): this {
    if (this.mode !== 'detached') this.raw.destroy(err);
    return this;
  }

  /**
   * Lets go of the TCP socket before the handshake is over (plain HTTP, answered on it with a
   * 400: plain-http-answer.ts): the TLS socket's writes, end and destroy no longer reach it, and
   * nothing more is read for TLS.
   */
  detach(): void {
    this.mode = 'detached';
    this.raw.removeListener('data', this.onData);
    for (const listener of this.direct) this.raw.removeListener('data', listener);
    this.held = [];
    this.pending.clear();
  }

  /** The peer's TLS 1.3 handshake traffic secret, from a 'keylog' line. */
  useSecret(secret: Buffer): void {
    if (this.opener !== undefined || this.mode !== 'hello') return;
    this.opener = new RecordOpener(secret);
    if (this.role === 'client') this.version = 'tls13';
    // records that waited for it are examined once the current read (which may be OpenSSL's
    // answer to the hello, inside which 'keylog' fires) has returned
    // (a client's gate is given the key inside its own loop, as it hands OpenSSL the ServerHello:
    // it reads on at once, and the gate may be open by then)
    if (this.pending.length > 0) process.nextTick(() => this.mode === 'hello' && this.examineInput());
  }

  /** Learns the version from our ServerHello: under TLS 1.2 the peer's records after its ChangeCipherSpec are encrypted, with no key this gate has. */
  private readServerHello(chunk: Buffer): void {
    this.written = this.written.length === 0 ? chunk : Buffer.concat([this.written, chunk]);
    this.version = serverHelloVersion(this.written);
    if (this.version !== undefined || this.written.length > MAX_RECORD_PAYLOAD + 5) {
      this.version ??= 'tls12';
      this.written = Buffer.alloc(0);
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.mode === 'open') return this.forward(chunk);
    if (this.mode !== 'hello') return;
    if (this.pending.add(chunk)) return this.examineInput();
    if (this.pending.length + this.messages.length + this.heldBytes > MAX_HELD) this.refuse(`more than ${MAX_HELD} bytes held before its certificates could be judged`);
  };

  /** Reads what came, whatever it is: a reading that throws (a bug of ours on bytes nobody foresaw) closes this connection, never the process. */
  private examineInput(): void {
    this.pending.join();
    try {
      this.examineRecords();
    } catch (err) {
      if (this.mode === 'hello') this.refuse(`bytes the gate could not read (${(err as Error).message})`);
    }
  }

  private examineRecords(): void {
    if (this.mode !== 'hello') return;
    let input = this.pending.bytes;
    while (this.mode === 'hello' && input.length >= 5) {
      // an SSLv2-format hello (its length's high bit set): no TLS 1.2 or 1.3 client sends one,
      // and it would take the records after it past the gate
      if (input[0]! >= 0x80) return this.refuse('an SSLv2-format hello');
      // not TLS (plain HTTP to the port, junk): OpenSSL refuses it at its first bytes, and says
      // why (the inbound answers plain HTTP, the outbound names a port that is no TLS server);
      // from a server past its first record, refused here, before any of it
      if (input[0]! < 20 || input[0]! > 23 || input[1] !== 3) {
        if (this.role === 'client' && this.records > 0) return this.refuse(`bytes that are no TLS record (type ${input[0]}, version ${input[1]}.${input[2]}) after its first`);
        this.mode = 'open';
        break;
      }
      const length = input.readUInt16BE(3);
      if (length > MAX_RECORD_PAYLOAD) return this.refuse(`a TLS record of ${length} bytes`);
      if (input.length < 5 + length) {
        this.pending.waitFor(5 + length);
        break;
      }
      // a protected record before the key is known waits for it (TLS 1.3: it comes with OpenSSL's
      // answer to the hello); under TLS 1.2 no key comes, and no certificate after it. No server
      // sends one before its ServerHello: a client's gate would hold them for a key that never comes
      if (input[0] === APPLICATION_DATA && this.opener === undefined) {
        if (this.role === 'client' && this.version === undefined) return this.refuse('a protected record before its ServerHello');
        // no record of no bytes opens the gate (OpenSSL skips them): none is sent protected before the certificates
        if (length === 0) return this.refuse('an empty protected record before its certificates');
        if (this.version !== 'tls12') break;
        this.mode = 'open';
        break;
      }
      if (++this.records > MAX_RECORDS) return this.refuse(`more than ${MAX_RECORDS} TLS records before its certificates`);
      this.examineRecord(this.pending.take(5 + length));
      input = this.pending.bytes;
    }
    if (this.mode === 'open') return this.openUp();
    if (this.mode === 'hello' && this.pending.length + this.messages.length + this.heldBytes > MAX_HELD) this.refuse(`more than ${MAX_HELD} bytes held before its certificates could be judged`);
  }

  private examineRecord(record: Buffer): void {
    const type = record[0];
    if (type === HANDSHAKE) this.readMessages(record.subarray(5), false);
    else if (type === APPLICATION_DATA) {
      const opened = this.opener?.open(record.subarray(0, 5), record.subarray(5));
      if (opened === undefined) return this.refuse('a protected handshake record that does not open with the handshake key');
      // an alert (OpenSSL carries on past a user_canceled one) or anything else passes, and the
      // gate reads on: only the certificates, or the end of the peer's handshake, open it
      if (opened.type === HANDSHAKE) this.readMessages(opened.content, true);
    } else if (type === CHANGE_CIPHER_SPEC) {
      // TLS 1.2: what follows is encrypted (a resumed session's Finished, or a handshake past its
      // certificates). TLS 1.3 sends one for middleboxes, also before a second ClientHello. Only
      // one OpenSSL acts on (its one byte, 1): it skips a record of no bytes (up to 32 in a row),
      // and an empty one opened the gate before the certificates (a review: 1.1 s a dial, served)
      if (this.version === 'tls12' && record.length === 6 && record[5] === 1) this.mode = 'open';
    }
    // an alert in the clear passes, and the gate reads on
    if (this.mode === 'refused') return;
    this.held.push(record);
    this.heldBytes += record.length;
    // a certificate message still incomplete: hold its records; else let them through
    if (this.mode === 'hello' && this.messages[0] === CERTIFICATE) return;
    if (this.mode === 'hello') this.flushHeld();
  }

  /**
   * Reads whole handshake messages: hellos pass, a certificate message is judged (and then the
   * gate's work is done), and so is it at the peer's Finished (a resumed session has no
   * certificates). Any other message passes, for OpenSSL to refuse out of its place, and the gate
   * reads on.
   */
  private readMessages(bytes: Buffer, tls13: boolean): void {
    this.messages = this.messages.length === 0 ? bytes : Buffer.concat([this.messages, bytes]);
    this.messagesTls13 = tls13;
    while (this.mode === 'hello' && this.messages.length > 0) {
      const type = this.messages[0];
      if (this.messages.length < 4) return;
      const length = this.messages.readUIntBE(1, 3);
      if (type === CERTIFICATE && length > MAX_CERTIFICATE_MESSAGE) return this.refuse(`a certificate message of ${length} bytes (more than ${MAX_CERTIFICATE_MESSAGE})`, 'invalid_certificate');
      if (length > MAX_HELD) return this.refuse(`a handshake message of ${length} bytes before its certificates`);
      if (this.messages.length < 4 + length) return;
      const body = this.messages.subarray(4, 4 + length);
      this.messages = this.messages.subarray(4 + length);
      // a client's gate learns the version from the server's whole ServerHello (or HelloRetryRequest)
      if (type === SERVER_HELLO && this.role === 'client' && this.version === undefined) this.version = serverHelloBodyVersion(body);
      if (type === CERTIFICATE) {
        const judged = judgeCertificateMessage(body, this.messagesTls13);
        if (judged.refusal !== undefined) return this.refuse(judged.refusal, 'invalid_certificate');
        this.checkedMs = judged.checkedMs;
        this.mode = 'open';
      }
      // a Finished is always protected (TLS 1.2 sends it after its ChangeCipherSpec): one in the
      // clear is out of its place, for OpenSSL to refuse, and opens nothing
      if (type === FINISHED && this.messagesTls13) this.mode = 'open';
    }
  }

  private flushHeld(): void {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const record of held) this.forward(record);
  }

  /** The certificates passed (or never came): what was held and what follows go straight to TLS. */
  private openUp(): void {
    this.flushHeld();
    const rest = this.pending.takeAll();
    this.messages = Buffer.alloc(0);
    if (rest.length > 0) this.forward(rest);
    // from here each read goes to the TLS socket's listener without this gate's handler
    this.raw.removeListener('data', this.onData);
    this.direct = this.listeners('data') as Array<(chunk: Buffer) => void>;
    for (const listener of this.direct) this.raw.on('data', listener);
  }

  private refuse(why: string, reason: HandshakeGate['refusalReason'] = 'protocol'): void {
    this.mode = 'refused';
    this.refusal = why;
    this.refusalReason = reason;
    this.held = [];
    this.heldBytes = 0;
    this.pending.clear();
    this.messages = Buffer.alloc(0);
    this.onRefused(this);
    this.raw.destroy();
  }
}
