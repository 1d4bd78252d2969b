// What a stream's unread body costs the receiver, against a hostile caller speaking HTTP/2 by
// hand over mutual TLS to our server, whose consumer does not read (yet): memory follows the
// bytes received, not the number of DATA frames nor the socket reads they came in
// (src/h2/stream-held-body.ts). Flood of 1-byte DATA frames; 1-byte DATA frames each in a
// TLS record beside a large frame of unknown type (each would pin its whole record); 1-byte
// frames between 1 KiB ones (each would start a fresh coalescing buffer); frames
// of mixed sizes arriving intact and in order once the consumer reads; and stream credit
// going back only as the consumer takes the bytes, never for what is merely held.

// test-run: own process (it measures this process's heap)
import t from 'tap';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_LIMITS } from '../../src/h2/limits.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectRawH2, frame, FLAG, FRAME, requestHeaders, type RawH2Connection } from '../helpers/raw-h2.js';
import { readBody, startOurServer, tlsPair, waitFor, type OurServer } from './fixtures/h2-helpers.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and memory outside it (external includes the ArrayBuffers behind Buffers), after full GCs. */
async function settledMemory(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const MiB = 1024 * 1024;
const WINDOW = DEFAULT_LIMITS.initialWindowSize;
const upload = (id: number): Buffer => requestHeaders(id, [[':method', 'POST'], [':scheme', 'https'], [':path', `/up/${id}`], [':authority', 'x']], false);
/** The byte at `i` of stream `id`'s body, so order and completeness can be checked. */
const byteAt = (id: number, i: number): number => (i * 7 + id) & 0xff;

/** Our server over mTLS whose streams nobody reads; a raw hostile caller, SETTINGS exchanged. */
async function setUp(t: TapTest): Promise<{ server: OurServer; streams: Map<number, H2Stream>; raw: RawH2Connection }> {
  const streams = new Map<number, H2Stream>();
  const server = await startOurServer((stream) => void streams.set(stream.id, stream), { tls: true });
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());
  await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'the SETTINGS ACK');
  return { server, streams, raw };
}

/** setUp, with one upload (stream 1) open. */
async function setUpOne(t: TapTest): Promise<{ raw: RawH2Connection; stream: H2Stream }> {
  const { streams, raw } = await setUp(t);
  raw.write(upload(1));
  await waitFor(() => streams.size === 1, 'the stream');
  return { raw, stream: streams.get(1)! };
}

/** Bytes [from, from + size) of stream `id`'s body. */
function bodyBytes(id: number, from: number, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = byteAt(id, from + i);
  return bytes;
}

/** One write, so one TLS record (up to 16 KiB), flushed before the next. */
function writeRecord(raw: RawH2Connection, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => raw.socket.write(bytes, () => resolve()));
}

async function send(raw: RawH2Connection, bytes: Buffer): Promise<void> {
  if (!raw.socket.write(bytes)) await new Promise((resolve) => raw.socket.once('drain', resolve));
}

/** Reads the whole body (END_STREAM follows) and checks it byte by byte. */
async function checkBody(t: TapTest, raw: RawH2Connection, stream: H2Stream, length: number): Promise<void> {
  const body = readBody(stream);
  raw.write(frame(FRAME.DATA, FLAG.END_STREAM, stream.id));
  const got = await body;
  let wrong = got.length === length ? -1 : Math.min(got.length, length);
  for (let i = 0; i < Math.min(got.length, length) && wrong < 0; i++) if (got[i] !== byteAt(stream.id, i)) wrong = i;
  t.equal(wrong, -1, `stream ${stream.id}: all ${length} bytes, in order, once read (first wrong byte at ${wrong})`);
}

t.test('1-byte DATA frames filling two stream windows cost memory in proportion to the bytes', async (t) => {
  const { streams, raw } = await setUp(t);
  const ids = [1, 3];
  for (const id of ids) raw.write(upload(id));
  await waitFor(() => streams.size === ids.length, 'the streams');
  const before = await settledMemory();
  // the frames of both streams interleaved, 4096 to a write
  const batch: Buffer[] = [];
  for (let i = 0; i < WINDOW; i++) {
    for (const id of ids) batch.push(frame(FRAME.DATA, 0, id, Buffer.of(byteAt(id, i))));
    if (batch.length >= 4096) await send(raw, Buffer.concat(batch.splice(0)));
  }
  await send(raw, Buffer.concat(batch));
  await waitFor(() => ids.every((id) => streams.get(id)!.dataReceived === WINDOW), 'both stream windows of 1-byte frames', 15_000);
  const growth = (await settledMemory()) - before;
  const bytes = ids.length * WINDOW;
  t.ok(growth < 4 * bytes + 2 * MiB, `${bytes} unread bytes in ${bytes} frames grew memory by ${(growth / MiB).toFixed(1)} MiB (${(growth / bytes).toFixed(1)} bytes per byte; limit 4 per byte + 2 MiB)`);
  for (const id of ids) t.equal(streams.get(id)!.readableLength, WINDOW, `stream ${id}: the whole window waits unread`);
  t.notOk(
    raw.frames.some((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId !== 0),
    'no stream credit went back for bytes nobody took',
  );
  for (const id of ids) await checkBody(t, raw, streams.get(id)!, WINDOW);
});

t.test('1-byte DATA frames, each in a TLS record beside a large unknown frame, pin no records', async (t) => {
  const { raw, stream } = await setUpOne(t);
  const count = 2000;
  const filler = frame(0x20, 0, 0, Buffer.alloc(16_000)); // unknown type: ignored, but in the same socket read
  const before = await settledMemory();
  // each in a record of 16,019 bytes: the receiver reads at most about one per chunk
  for (let i = 0; i < count; i++) await writeRecord(raw, Buffer.concat([frame(FRAME.DATA, 0, 1, bodyBytes(1, i, 1)), filler]));
  await waitFor(() => stream.dataReceived === count, 'every 1-byte frame', 15_000);
  const growth = (await settledMemory()) - before;
  t.ok(growth < 4 * MiB, `${count} unread bytes, one per ${(16_019 / 1024).toFixed(0)} KiB record, grew memory by ${(growth / MiB).toFixed(1)} MiB (limit 4 MiB)`);
  await checkBody(t, raw, stream, count);
});

t.test('1-byte DATA frames between 1 KiB ones (kept as views) do not each cost a large tail', async (t) => {
  const { raw, stream } = await setUpOne(t);
  const before = await settledMemory();
  // 1 byte, then 1 KiB, each in its own record: a record the 1 KiB payload is nearly all of
  for (let sent = 0, round = 0; sent < WINDOW; round++) {
    const size = Math.min(round % 2 === 0 ? 1 : 1024, WINDOW - sent);
    await writeRecord(raw, frame(FRAME.DATA, 0, 1, bodyBytes(1, sent, size)));
    sent += size;
  }
  await waitFor(() => stream.dataReceived === WINDOW, 'a whole window', 15_000);
  const growth = (await settledMemory()) - before;
  t.ok(growth < 4 * WINDOW + MiB, `${WINDOW} unread bytes grew memory by ${(growth / MiB).toFixed(1)} MiB (${(growth / WINDOW).toFixed(1)} bytes per byte; limit 4 per byte + 1 MiB)`);
  await checkBody(t, raw, stream, WINDOW);
});

t.test('frames of mixed sizes, held while nobody reads, arrive whole and in order; credit follows the reads', async (t) => {
  const { raw, stream } = await setUpOne(t);
  // sizes from 1 byte to a full 16 KiB frame, several frames to a write or a frame across writes
  const sizes = [1, 5000, 16_384, 3, 1023, 1024, 2048, 16_384, 16_384, 700, 9000, 1, 1, 12_000];
  // the first byte alone, taken into the (empty) readable; what follows is held
  await send(raw, frame(FRAME.DATA, 0, 1, bodyBytes(1, 0, 1)));
  await waitFor(() => stream.dataReceived === 1, 'the first byte');
  let sent = 1;
  let pending: Buffer[] = [];
  for (let round = 1; sent < WINDOW; round++) {
    const size = Math.min(sizes[round % sizes.length]!, WINDOW - sent);
    pending.push(frame(FRAME.DATA, 0, 1, bodyBytes(1, sent, size)));
    sent += size;
    if (round % 3 === 2) {
      const bytes = Buffer.concat(pending);
      pending = [];
      // every other write split mid-frame
      if (round % 2 === 0) {
        await send(raw, bytes.subarray(0, bytes.length >> 1));
        await send(raw, bytes.subarray(bytes.length >> 1));
      } else await send(raw, bytes);
    }
  }
  await send(raw, Buffer.concat(pending));
  await waitFor(() => stream.dataReceived === WINDOW, 'a whole window');
  t.equal(stream.readableLength, WINDOW, 'the whole window waits unread');
  t.notOk(
    raw.frames.some((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 1),
    'no stream credit while nothing was read',
  );
  // take a quarter, a piece at a time: that much credit goes back, and no more
  const first = stream.read(3000) as Buffer | null;
  t.equal(first?.length, 3000, 'read(n) gives n bytes when readableLength says they wait (held ones included)');
  let taken = first?.length ?? 0;
  while (taken < WINDOW / 4) {
    const piece = stream.read(Math.min(3000, WINDOW / 4 - taken)) as Buffer | null;
    if (piece === null) await new Promise((resolve) => stream.once('readable', resolve));
    else taken += piece.length;
  }
  // what the server sent before answering this PING has arrived when its ACK does
  raw.write(frame(FRAME.PING, 0, 0, Buffer.from('credit!!')));
  await raw.waitFor((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0, 'the PING ACK');
  const credit = raw.frames.filter((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 1).reduce((sum, f) => sum + f.payload.readUInt32BE(0), 0);
  t.equal(credit, taken, 'stream credit for exactly what the consumer took');
  t.equal(stream.readableLength, WINDOW - taken, 'the rest still waits');
  // the rest, read by a flowing consumer, follows what was taken, in order
  const rest = readBody(stream);
  raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1));
  const body = await rest;
  let wrong = body.length === WINDOW - taken ? -1 : 0;
  for (let i = 0; i < body.length && wrong < 0; i++) if (body[i] !== byteAt(1, taken + i)) wrong = i;
  t.equal(wrong, -1, `the remaining ${WINDOW - taken} bytes whole and in order`);
});

t.test('a consumer that keeps every chunk as it comes pins no records either', async (t) => {
  const { raw, stream } = await setUpOne(t);
  const kept: Buffer[] = [];
  stream.on('error', () => {}); // the connection closes under it at the end of the test
  stream.on('data', (chunk: Buffer) => kept.push(chunk)); // flowing: each payload is handed over at once
  const count = 2000;
  const filler = frame(0x20, 0, 0, Buffer.alloc(16_000));
  const before = await settledMemory();
  for (let i = 0; i < count; i++) await writeRecord(raw, Buffer.concat([frame(FRAME.DATA, 0, 1, bodyBytes(1, i, 1)), filler]));
  await waitFor(() => stream.dataReceived === count, 'every 1-byte frame', 15_000);
  const growth = (await settledMemory()) - before;
  t.ok(growth < 4 * MiB, `${count} kept 1-byte chunks, one per ${(16_019 / 1024).toFixed(0)} KiB record, grew memory by ${(growth / MiB).toFixed(1)} MiB (limit 4 MiB)`);
  t.equal(Buffer.concat(kept).equals(bodyBytes(1, 0, count)), true, 'every byte, in order');
});

t.test('read(n) waiting for more than has come gets each new push (length-prefixed readers)', async (t) => {
  const { raw, stream } = await setUpOne(t);
  stream.on('error', () => {}); // the connection closes under it at the end of the test
  let taken = 0;
  stream.on('readable', () => {
    let chunk: Buffer | null;
    while ((chunk = stream.read(10_000) as Buffer | null) !== null) taken += chunk.length;
  });
  await send(raw, frame(FRAME.DATA, 0, 1, bodyBytes(1, 0, 1000)));
  await waitFor(() => stream.dataReceived === 1000, 'the first 1000 bytes');
  // 160,000 more in 1 KiB frames: they must reach the reader as they come, not only at END_STREAM
  for (let at = 1000; at < 161_000; at += 1000) await send(raw, frame(FRAME.DATA, 0, 1, bodyBytes(1, at, 1000)));
  await waitFor(() => taken >= 160_000, `read(10000) to take 160,000 bytes before the end (took ${taken})`, 10_000);
  t.ok(taken >= 160_000, `read(10000) took ${taken} bytes without waiting for END_STREAM`);
});

t.test('small payloads that come in one socket read reach the consumer as one piece', async (t) => {
  const { raw, stream } = await setUpOne(t);
  stream.on('error', () => {}); // the connection closes under it at the end of the test
  const pieces: number[] = [];
  stream.on('data', (chunk: Buffer) => pieces.push(chunk.length));
  const count = 4096;
  // 4,096 one-byte frames in one write: a few TLS records, so a few socket reads
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(frame(FRAME.DATA, 0, 1, bodyBytes(1, i, 1)));
  await send(raw, Buffer.concat(frames));
  await waitFor(() => pieces.reduce((a, b) => a + b, 0) === count, 'every byte');
  t.ok(pieces.length <= 16, `${count} one-byte frames came as ${pieces.length} pieces (a piece per socket read, not per frame)`);
});
