// Test helper: HTTP/2 spoken by hand over mutual TLS, for a caller that does what no
// well-behaved client does (ignore the server's SETTINGS, open more streams than allowed).
// Frames are written as given; HPACK is the trivial part: static-table names, literal values
// without indexing, no Huffman. Every frame the server sends is recorded.

import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const SETTING = { MAX_CONCURRENT_STREAMS: 0x3 } as const;
export const ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, ENHANCE_YOUR_CALM: 11 } as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]> = []): Buffer {
  const payload = Buffer.alloc(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix. */
function hpackInteger(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7, 0)), bytes]); // H = 0: no Huffman
}

/** Static-table indexes of the names a request needs (RFC 7541 Appendix A). */
const STATIC_NAME: Record<string, number> = { ':authority': 1, ':method': 2, ':path': 4, ':scheme': 6, 'user-agent': 58, accept: 19, 'content-type': 31 };

/** A header block: every field a literal without indexing, its name from the static table where it is there. */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const index = STATIC_NAME[name];
    if (index !== undefined) parts.push(Buffer.from(hpackInteger(index, 4, 0x00)), hpackString(value));
    else parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

/** A request's HEADERS frame (END_HEADERS; END_STREAM unless a body follows). */
export function requestHeaders(streamId: number, fields: ReadonlyArray<readonly [string, string]>, endStream = true): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, headerBlock(fields));
}

/** The :status of a response HEADERS frame when it comes first as a static-table entry (200, 204, ... 500), else undefined. */
export function statusOf(headers: Frame): number | undefined {
  let block = headers.payload;
  if (headers.flags & FLAG.PADDED) block = block.subarray(1, block.length - (block[0] as number));
  if (headers.flags & FLAG.PRIORITY) block = block.subarray(5);
  let at = 0;
  while (at < block.length && ((block[at] as number) & 0xe0) === 0x20) at++; // dynamic table size updates (small ones)
  const first = block[at];
  if (first === undefined || (first & 0x80) === 0) return undefined;
  return ({ 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 } as Record<number, number>)[first & 0x7f];
}

export interface RawH2Connection {
  readonly socket: tls.TLSSocket;
  /** Every frame the server has sent, in order. */
  readonly frames: Frame[];
  write(bytes: Buffer): void;
  /** Resolves with the first frame (already received or still to come) that matches. */
  waitFor(predicate: (frame: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>;
  readonly closed: Promise<void>;
  destroy(): void;
}

/**
 * Opens a TLS connection with ALPN h2 and sends the preface and an empty SETTINGS frame. With
 * `ackSettings` false the server's SETTINGS are never acknowledged (their values never take
 * effect as far as the protocol goes); with true they are, and ignored all the same.
 */
export function connectRawH2(port: number, tlsOptions: tls.ConnectionOptions, options: { ackSettings: boolean }): Promise<RawH2Connection> {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], ...tlsOptions });
  return rawH2Over(socket, 'secureConnect', options, () => (socket.alpnProtocol === 'h2' ? undefined : `ALPN chose ${String(socket.alpnProtocol)}, not h2`));
}

/** As connectRawH2, over plain TCP (h2c with prior knowledge: the outbound's listener). */
export function connectRawH2c(port: number, options: { ackSettings: boolean }): Promise<RawH2Connection> {
  return rawH2Over(net.connect({ host: '127.0.0.1', port }), 'connect', options, () => undefined);
}

/** The raw client on a connecting socket: once `ready` (and `refusal` finds nothing wrong), the preface and SETTINGS go out. */
function rawH2Over<S extends net.Socket>(socket: S, ready: string, options: { ackSettings: boolean }, refusal: () => string | undefined): Promise<RawH2Connection> {
  return new Promise((resolve, reject) => {
    const frames: Frame[] = [];
    const waiters: Array<{ predicate: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
    let buffered = Buffer.alloc(0);
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const received: Frame = { type: buffered.readUInt8(3), flags: buffered.readUInt8(4), streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) };
        buffered = buffered.subarray(9 + length);
        frames.push(received);
        if (options.ackSettings && received.type === FRAME.SETTINGS && !(received.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        for (const waiter of [...waiters]) {
          if (waiter.predicate(received)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(received);
          }
        }
      }
    });
    socket.once('error', reject);
    socket.once(ready, () => {
      const refused = refusal();
      if (refused !== undefined) {
        socket.destroy();
        reject(new Error(refused));
        return;
      }
      socket.off('error', reject);
      socket.on('error', () => {});
      socket.write(Buffer.concat([PREFACE, settingsFrame()]));
      resolve({
        socket: socket as unknown as tls.TLSSocket,
        frames,
        write: (bytes) => socket.write(bytes),
        waitFor(predicate, what, timeoutMs = 5000) {
          const seen = frames.find(predicate);
          if (seen) return Promise.resolve(seen);
          return new Promise((resolveFrame, rejectFrame) => {
            const timer = setTimeout(() => rejectFrame(new Error(`${what}: no such frame within ${timeoutMs} ms; got ${describe(frames)}`)), timeoutMs);
            waiters.push({
              predicate,
              resolve: (f) => {
                clearTimeout(timer);
                resolveFrame(f);
              },
            });
          });
        },
        closed,
        destroy: () => socket.destroy(),
      });
    });
  });
}

/** A PING round trip from the raw client: every frame it sent before has been processed. */
export async function pingRoundTrip(raw: RawH2Connection, tag: number): Promise<void> {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(tag, 4);
  raw.write(frame(FRAME.PING, 0, 0, payload));
  await raw.waitFor((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0 && f.payload.equals(payload), `PING ACK ${tag}`);
}

/** A short account of frames, for failure messages. */
export function describe(frames: readonly Frame[]): string {
  const names = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'CONTINUATION'];
  return frames.map((f) => `${names[f.type] ?? f.type}(${f.streamId}${f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY ? `, code ${errorCodeOf(f)}` : ''})`).join(' ');
}

/** The error code of a RST_STREAM or GOAWAY frame. */
export function errorCodeOf(f: Frame): number | undefined {
  if (f.type === FRAME.RST_STREAM) return f.payload.readUInt32BE(0);
  if (f.type === FRAME.GOAWAY) return f.payload.readUInt32BE(4);
  return undefined;
}

/** The last stream id a GOAWAY frame says the server will process. */
export function lastStreamOf(goaway: Frame): number {
  return goaway.payload.readUInt32BE(0) & 0x7fffffff;
}

/**
 * The server side of a connection spoken by hand: skips the client's preface, cuts what arrives
 * into frames, acknowledges the client's SETTINGS (and answers its PINGs, if asked), and hands
 * every frame to `onFrame`. Shared by the raw servers of the tests (frame recorder, the codec's
 * client-role server, the hostile upstream).
 */
export function readClientFrames(socket: net.Socket, onFrame: (f: Frame) => void, options: { answerPings?: boolean } = {}): void {
  let buffered = Buffer.alloc(0);
  let prefaceSeen = false;
  const send = (bytes: Buffer) => void (socket.destroyed || socket.write(bytes));
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (!prefaceSeen) {
      if (buffered.length < PREFACE.length) return;
      buffered = buffered.subarray(PREFACE.length);
      prefaceSeen = true;
    }
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) return;
      const f: Frame = { type: buffered[3] as number, flags: buffered[4] as number, streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) };
      buffered = buffered.subarray(9 + length);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) send(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (options.answerPings && f.type === FRAME.PING && !(f.flags & FLAG.ACK)) send(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
      onFrame(f);
    }
  });
}

export interface RecordedStream {
  /** Frame types and flags as the server received them, e.g. `HEADERS`, `DATA+END`, `RST`. */
  readonly frames: string[];
  body: string;
}

/**
 * A server written as raw frames, so a test sees the frames themselves (a Node server pushes
 * an end of the body on RST_STREAM too, which hides whether END_STREAM came): h2c, or HTTP/2
 * over TLS when `tlsOptions` are given (ALPN h2). It records every stream's HEADERS, DATA and
 * RST_STREAM frames, answers `:status 200` to a request whose body ended with END_STREAM, and
 * calls `onStreamDone` when a stream ended or was reset.
 */
export async function startFrameRecorder(onStreamDone: (s: RecordedStream) => void, tlsOptions?: tls.TlsOptions) {
  const all: RecordedStream[] = [];
  const serve = (socket: net.Socket) => {
    socket.on('error', () => {});
    socket.write(frame(FRAME.SETTINGS, 0, 0));
    const streams = new Map<number, RecordedStream>();
    readClientFrames(socket, ({ type, flags, streamId: id, payload }) => {
      if (id === 0 || (type !== FRAME.HEADERS && type !== FRAME.DATA && type !== FRAME.RST_STREAM)) return;
      let s = streams.get(id);
      if (s === undefined) {
        streams.set(id, (s = { frames: [], body: '' }));
        all.push(s);
      }
      const ends = type !== FRAME.RST_STREAM && (flags & FLAG.END_STREAM) !== 0;
      s.frames.push(({ [FRAME.HEADERS]: 'HEADERS', [FRAME.DATA]: 'DATA', [FRAME.RST_STREAM]: 'RST' } as Record<number, string>)[type]! + (ends ? '+END' : ''));
      if (type === FRAME.DATA) s.body += payload.toString();
      if (ends) socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Buffer.from([0x88])));
      if (ends || type === FRAME.RST_STREAM) onStreamDone(s);
    });
  };
  const server = tlsOptions ? tls.createServer({ ...tlsOptions, ALPNProtocols: ['h2'] }, serve) : net.createServer(serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { streams: all, port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A raw h2c app (cleartext, prior knowledge) on loopback: its SETTINGS, then `answer(streamId)`'s frames for each request's HEADERS. */
export async function startRawH2cApp(answer: (id: number) => Buffer[]): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(settingsFrame());
    readClientFrames(socket, (f) => {
      if (f.type === FRAME.HEADERS) for (const bytes of answer(f.streamId)) socket.write(bytes);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
