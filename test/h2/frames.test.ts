// The codec alone: every frame type written by FrameWriter is read back by FrameReader with
// the same fields; the same byte stream split at every byte boundary gives the same frames;
// frames produced in one event-loop turn leave in one socket write; arbitrary or mutated byte
// streams (fast-check) only ever end in a ConnectionFault, never another exception, and never
// make the reader allocate more than the max frame size. And the header rules on both sides:
// outgoing objects become flat lists, pseudo-headers first, refusing what HTTP/2 cannot carry;
// incoming lists are checked against RFC 9113 §8.2–8.3 and joined as Node joins duplicates.
// (One file: each test file costs seconds of TypeScript loading.)

import t from 'tap';
import fc from 'fast-check';
import { Duplex } from 'node:stream';
import { CLIENT_PREFACE, ErrorCode, Flag, FrameType } from '../../src/h2/constants.js';
import { ConnectionFault } from '../../src/h2/errors.js';
import { FrameReader, type FrameHandler } from '../../src/h2/frame-reader.js';
import { FrameWriter, type FrameSink } from '../../src/h2/frame-writer.js';
import { H2Connection } from '../../src/h2/connection.js';
import { HpackEncoder } from '../../src/h2/hpack/index.js';
import { HeadKind, parseHead } from '../../src/h2/headers.js';
import { flattenHeaders } from '../../src/h2/headers-outgoing.js';
import { frame } from '../helpers/raw-h2.js';

class Sink implements FrameSink {
  chunks: Buffer[] = [];
  writeCalls = 0;
  corks = 0;
  destroyed = false;
  write(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    this.writeCalls++;
    return true;
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {}
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Records every callback as a plain object (buffers as hex). */
function recorder(): { handler: FrameHandler; events: unknown[] } {
  const events: unknown[] = [];
  const hex = (b: Buffer) => b.toString('hex');
  const handler: FrameHandler = {
    onData: (id, data, end, flow) => events.push(['DATA', id, hex(data), end, flow]),
    onHeaders: (id, frag, end, endHeaders, dep) => events.push(['HEADERS', id, hex(frag), end, endHeaders, dep]),
    onContinuation: (id, frag, endHeaders) => events.push(['CONTINUATION', id, hex(frag), endHeaders]),
    onPriority: (id, dep) => events.push(['PRIORITY', id, dep]),
    onRstStream: (id, code) => events.push(['RST_STREAM', id, code]),
    onSettings: (ack, params) => events.push(['SETTINGS', ack, hex(params)]),
    onPushPromise: (id, promised, frag, endHeaders) => events.push(['PUSH_PROMISE', id, promised, hex(frag), endHeaders]),
    onPing: (ack, payload) => events.push(['PING', ack, hex(payload)]),
    onGoaway: (last, code, debug) => events.push(['GOAWAY', last, code, hex(debug)]),
    onWindowUpdate: (id, inc) => events.push(['WINDOW_UPDATE', id, inc]),
    onStreamFrameError: (id, code) => events.push(['STREAM_ERROR', id, code]),
  };
  return { handler, events };
}


/** Every frame type, written by FrameWriter where it can, by hand for padding and unknown types. */
async function allFrames(): Promise<Buffer> {
  const sink = new Sink();
  const w = new FrameWriter(sink);
  w.settings([1, 4096, 3, 100, 4, 65535]);
  w.settingsAck();
  w.headers(1, Buffer.from('header-block'), false, 16384);
  w.headers(3, Buffer.alloc(40, 7), true, 16); // HEADERS + 2 CONTINUATION
  w.data(1, Buffer.from('small'), false);
  w.data(1, Buffer.alloc(3000, 1), true); // the large path: header in the slab, payload by reference
  w.priority(5, 3, 16, true);
  w.rstStream(5, ErrorCode.CANCEL);
  w.pushPromise(1, 2, Buffer.from('promised-block'), 10); // 4-byte promised id + 6, then CONTINUATION
  w.ping(Buffer.from('12345678'), false);
  w.ping(Buffer.from('abcdefgh'), true);
  w.goaway(7, ErrorCode.ENHANCE_YOUR_CALM, Buffer.from('debug data'));
  w.windowUpdate(0, 1000);
  w.windowUpdate(1, 0x7fffffff);
  w.flush();
  return Buffer.concat([
    sink.bytes(),
    frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 9, Buffer.concat([Buffer.from([3]), Buffer.from('pad'), Buffer.alloc(3)])),
    frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS, 11, Buffer.concat([Buffer.from([2]), Buffer.from([0x80, 0, 0, 9, 15]), Buffer.from('hb'), Buffer.alloc(2)])),
    frame(0xfa, 0xff, 3, Buffer.from('unknown frame type: skipped')),
    frame(FrameType.PRIORITY, 0, 13, Buffer.alloc(4)), // wrong length: a stream error
  ]);
}

const EXPECTED = [
  ['SETTINGS', false, '000100001000000300000064000400' + '00ffff'],
  ['SETTINGS', true, ''],
  ['HEADERS', 1, Buffer.from('header-block').toString('hex'), false, true, -1],
  ['HEADERS', 3, '07'.repeat(16), true, false, -1],
  ['CONTINUATION', 3, '07'.repeat(16), false],
  ['CONTINUATION', 3, '07'.repeat(8), true],
  ['DATA', 1, Buffer.from('small').toString('hex'), false, 5],
  ['DATA', 1, '01'.repeat(3000), true, 3000],
  ['PRIORITY', 5, 3],
  ['RST_STREAM', 5, 8],
  ['PUSH_PROMISE', 1, 2, Buffer.from('promis').toString('hex'), false],
  ['CONTINUATION', 1, Buffer.from('ed-block').toString('hex'), true],
  ['PING', false, Buffer.from('12345678').toString('hex')],
  ['PING', true, Buffer.from('abcdefgh').toString('hex')],
  ['GOAWAY', 7, 11, Buffer.from('debug data').toString('hex')],
  ['WINDOW_UPDATE', 0, 1000],
  ['WINDOW_UPDATE', 1, 0x7fffffff],
  ['DATA', 9, Buffer.from('pad').toString('hex'), true, 7],
  ['HEADERS', 11, Buffer.from('hb').toString('hex'), false, true, 9],
  ['STREAM_ERROR', 13, ErrorCode.FRAME_SIZE_ERROR],
];

t.test('every frame type round-trips through writer and reader', async (t) => {
  const bytes = await allFrames();
  const { handler, events } = recorder();
  // PUSH_PROMISE leaves a header block open that the CONTINUATION after it closes
  new FrameReader(handler, { maxFrameSize: 16384 }).push(bytes);
  t.same(events, EXPECTED);
});

t.test('the same stream split at every byte boundary, and byte by byte, reads the same', async (t) => {
  const bytes = await allFrames();
  for (let cut = 1; cut < bytes.length; cut++) {
    const { handler, events } = recorder();
    const reader = new FrameReader(handler, { maxFrameSize: 16384 });
    reader.push(bytes.subarray(0, cut));
    reader.push(bytes.subarray(cut));
    if (JSON.stringify(events) !== JSON.stringify(EXPECTED)) {
      t.fail(`split at ${cut} differs`);
      return;
    }
  }
  const { handler, events } = recorder();
  const reader = new FrameReader(handler, { maxFrameSize: 16384 });
  for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
  t.same(events, EXPECTED, 'byte by byte');
  t.pass(`${bytes.length - 1} split points`);
});

t.test('the reader checks the preface, the first frame, sizes and header-block interleaving', async (t) => {
  const fault = (bytes: Buffer, options: { maxFrameSize: number; preface?: Buffer } = { maxFrameSize: 16384 }): ConnectionFault | undefined => {
    try {
      new FrameReader(recorder().handler, options).push(bytes);
    } catch (err) {
      if (err instanceof ConnectionFault) return err;
      throw err;
    }
    return undefined;
  };
  const settings = frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0));
  t.match(fault(Buffer.from('GET / HTTP/1.1\r\n\r\n'), { maxFrameSize: 16384, preface: CLIENT_PREFACE }), { reason: 'bad_preface' });
  t.match(fault(frame(FrameType.PING, 0, 0, Buffer.alloc(8))), { reason: 'bad_preface' }, 'the first frame must be SETTINGS');
  t.match(fault(frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0))), { reason: 'bad_preface' }, 'and not an ACK');
  t.match(fault(Buffer.concat([settings, frame(FrameType.DATA, 0, 1, Buffer.alloc(16385))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([5, 1, 2]))])), { h2Code: ErrorCode.PROTOCOL_ERROR }, 'padding longer than the payload');
  t.match(fault(Buffer.concat([settings, frame(FrameType.DATA, 0, 0, Buffer.alloc(1))])), { h2Code: ErrorCode.PROTOCOL_ERROR }, 'DATA on stream 0');
  t.match(fault(Buffer.concat([settings, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.PING, 0, 0, Buffer.alloc(7))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(5))])), { h2Code: ErrorCode.FRAME_SIZE_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.GOAWAY, 0, 1, Buffer.alloc(8))])), { h2Code: ErrorCode.PROTOCOL_ERROR });
  t.match(fault(Buffer.concat([settings, frame(FrameType.HEADERS, 0, 1, Buffer.alloc(1)), frame(0xfa, 0, 1, Buffer.alloc(1))])), { h2Code: ErrorCode.PROTOCOL_ERROR }, 'even an unknown frame may not interrupt a header block');
  t.match(fault(Buffer.concat([settings, frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(1))])), { h2Code: ErrorCode.PROTOCOL_ERROR }, 'CONTINUATION with no open block');
  t.equal(fault(Buffer.concat([settings, frame(0xfa, 0, 0, Buffer.alloc(100))])), undefined, 'unknown frame types are ignored');
});

t.test('frames produced in one event-loop turn leave in one socket write', async (t) => {
  const sink = new Sink();
  const w = new FrameWriter(sink);
  for (let i = 1; i < 200; i += 2) {
    w.headers(i, Buffer.from('hb'), false, 16384);
    w.data(i, Buffer.alloc(2000, 1), true);
  }
  w.ping(Buffer.alloc(8), true);
  t.equal(sink.writeCalls, 0, 'nothing written during the turn');
  await new Promise((r) => setImmediate(r));
  t.equal(w.writes, 1, 'one flush');
  t.equal(sink.corks, 1, 'one corked batch: one writev');
  const { handler, events } = recorder();
  const reader = new FrameReader(handler, { maxFrameSize: 16384 });
  reader.push(frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)));
  reader.push(sink.bytes());
  t.equal(events.length, 1 + 201, 'all 201 frames in that write (after the SETTINGS the reader needs first)');
});

/** Records the largest Buffer.allocUnsafe the code under test asks for. */
function watchAllocations<T>(fn: () => T): { result: T; largest: number } {
  const original = Buffer.allocUnsafe;
  let largest = 0;
  Buffer.allocUnsafe = ((size: number) => {
    largest = Math.max(largest, size);
    return original(size);
  }) as typeof Buffer.allocUnsafe;
  try {
    return { result: fn(), largest };
  } finally {
    Buffer.allocUnsafe = original;
  }
}

t.test('fuzz: arbitrary and mutated byte streams end in a ConnectionFault at worst, within the size limit', async (t) => {
  const valid = await allFrames();
  const streams = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)), Buffer.from(b)])),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const b = Buffer.from(valid);
      for (const [at, v] of edits) b[at] = v;
      return b;
    }),
  );
  fc.assert(
    fc.property(streams, fc.array(fc.nat(400), { maxLength: 5 }), (bytes, cuts) => {
      const { largest } = watchAllocations(() => {
        const reader = new FrameReader(recorder().handler, { maxFrameSize: 1024 });
        const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
        let from = 0;
        try {
          for (const p of [...points, bytes.length]) {
            reader.push(bytes.subarray(from, p));
            from = p;
          }
        } catch (err) {
          if (!(err instanceof ConnectionFault)) throw err;
        }
      });
      return largest <= 1024;
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 streams: no exception but ConnectionFault, no allocation beyond the max frame size');
});

/** A socket stand-in: what the connection writes is kept, what the test pushes is read. */
class FakeSocket extends Duplex {
  written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.written.push(chunk);
    cb();
  }
}

t.test('fuzz: a server connection fed arbitrary frames after the preface never throws', async (t) => {
  const enc = new HpackEncoder();
  const request = frame(FrameType.HEADERS, Flag.END_HEADERS, 1, enc.encode([':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'x']));
  const frames = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 40 })).map(([type, flags, id, p]) => frame(type, flags, id, Buffer.from(p))),
    fc.constant(request),
    fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)),
  );
  let closedWithError = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(frames, { maxLength: 12 }), async (list) => {
      const socket = new FakeSocket();
      const conn = new H2Connection(socket, { role: 'server', limits: { settingsTimeoutMs: 60_000 } });
      conn.on('stream', (s) => {
        s.on('error', () => {});
        s.respond({ ':status': 200 }, { endStream: true });
      });
      socket.push(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)), ...list]));
      await new Promise((r) => setImmediate(r));
      if (conn.destroyed) closedWithError++;
      conn.destroy();
      socket.destroy();
    }),
    { numRuns: 400 },
  );
  t.pass(`400 connections fed random frames: no exception escaped (${closedWithError} ended with a connection error)`);
});

t.test('outgoing headers', async (t) => {
  t.same(flattenHeaders({ 'Content-Type': 'text/plain', ':status': 200, 'set-cookie': ['a=1', 'b=2'], skipped: undefined }), [':status', '200', 'content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2'], 'pseudo first, lower case, arrays repeated, undefined skipped');
  t.throws(() => flattenHeaders({ ':status': 200, connection: 'close' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ ':status': 200, 'Transfer-Encoding': 'chunked' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ ':path': '/a\r\nx: y' }), { code: 'ERR_H2_INVALID_HEADER' }, 'CR LF in a pseudo-header value');
  t.throws(() => flattenHeaders({ 'x-a': ' leading space' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ 'bad name': 'v' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ 'x-a': 'snow ☃' }), { code: 'ERR_H2_INVALID_HEADER' }, 'a character HPACK cannot carry is refused before encoding');
  t.same(flattenHeaders({ 'x-a': 'caf\u00e9' }), ['x-a', 'caf\u00e9'], 'latin1 is fine');
  // a flat list is sent as it is: the same rules, no lower-casing or reordering for the caller
  const list = [':status', '200', 'x-a', '1', 'x-a', '2'];
  t.equal(flattenHeaders(list), list, 'a valid list is used as it is, not copied');
  t.throws(() => flattenHeaders([':status', '200', 'X-A', '1']), { code: 'ERR_H2_INVALID_HEADER' }, 'upper case in a list');
  t.throws(() => flattenHeaders(['x-a', '1', ':status', '200']), { code: 'ERR_H2_INVALID_HEADER' }, 'a pseudo-header after a regular one');
  t.throws(() => flattenHeaders([':status', '200', 'connection', 'close']), { code: 'ERR_H2_INVALID_HEADER' }, 'connection-specific');
  t.throws(() => flattenHeaders([':status', '200', 'x-a', 'trailing space ']), { code: 'ERR_H2_INVALID_HEADER' }, 'a value HTTP/2 refuses');
  t.throws(() => flattenHeaders([':status', '200', 'x-a']), { code: 'ERR_H2_INVALID_HEADER' }, 'a name without a value');
  t.throws(() => flattenHeaders([':status', '200', ':status', '204']), { code: 'ERR_H2_INVALID_HEADER' }, 'a duplicate pseudo-header in a list');
  t.throws(() => flattenHeaders([':method', 'GET', ':protocol', 'websocket']), { code: 'ERR_H2_INVALID_HEADER' }, 'an unknown pseudo-header in a list');
  t.throws(() => flattenHeaders({ ':method': 'GET', ':protocol': 'websocket' }), { code: 'ERR_H2_INVALID_HEADER' }, 'an unknown pseudo-header in an object');
  t.throws(() => flattenHeaders({ ':path': ['/a', '/b'] }), { code: 'ERR_H2_INVALID_HEADER' }, 'a pseudo-header given two values in an object');
  t.throws(() => flattenHeaders([':method', 'GET', 'te', 'gzip']), { code: 'ERR_H2_INVALID_HEADER' }, 'te other than trailers in a list');
  t.throws(() => flattenHeaders({ ':method': 'GET', TE: 'gzip' }), { code: 'ERR_H2_INVALID_HEADER' }, 'te other than trailers in an object');
  t.same(flattenHeaders([':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'a', 'te', 'trailers']), [':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'a', 'te', 'trailers'], 'every request pseudo-header once, and te: trailers, pass');
});

t.test('incoming headers', async (t) => {
  const ok = parseHead([':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'x', 'cookie', 'a=1', 'cookie', 'b=2', 'x-a', '1', 'x-a', '2', 'set-cookie', 's'], HeadKind.Request);
  t.match(ok, { headers: { cookie: 'a=1; b=2', 'x-a': '1, 2', 'set-cookie': ['s'] }, contentLength: -1 });
  // nothing inherited (head-objects.test.ts): an empty prototype whose own prototype is null
  const proto = Object.getPrototypeOf((ok as { headers: object }).headers) as object;
  t.same([Object.getPrototypeOf(proto), Object.getOwnPropertyNames(proto)], [null, []], 'no Object.prototype: no __proto__ tricks');
  const req = (extra: string[]) => parseHead([':method', 'GET', ':scheme', 'https', ':path', '/', ...extra], HeadKind.Request);
  t.type(req(['content-length', '5', 'content-length', '6']), 'string', 'conflicting content-length');
  t.match(req(['content-length', '5', 'content-length', '5']), { contentLength: 5 }, 'repeated equal content-length');
  t.type(req(['content-length', '-1']), 'string');
  t.type(req(['x', 'a\u0000b']), 'string', 'NUL in a value');
  t.type(req(['te', 'gzip']), 'string');
  t.match(req(['te', 'trailers']), { headers: { te: 'trailers' } });
  t.type(parseHead([':method', 'CONNECT', ':authority', 'x:443'], HeadKind.Request), 'object', 'CONNECT with :authority only');
  t.type(parseHead([':method', 'CONNECT', ':authority', 'x', ':protocol', 'websocket', ':scheme', 'https', ':path', '/'], HeadKind.Request), 'string', 'no extended CONNECT');
  t.type(parseHead([':status', '101'], HeadKind.Response), 'string', '101 does not exist in HTTP/2');
  t.type(parseHead([':status', '2000'], HeadKind.Response), 'string');
  t.type(parseHead(['grpc-status', '0', ':status', '200'], HeadKind.Trailers), 'string', 'no pseudo-header in trailers');
});
