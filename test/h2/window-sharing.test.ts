// Streams sharing one connection's receive window (src/h2/limits.ts, WINDOWS): streams whose
// consumers do not read stop at their own window and never hold the whole connection's, so a
// stream that reads goes on beside them, in both directions (our client receiving answers,
// our server receiving uploads), over mutual TLS with the default limits; and the connection
// window a server announces holds all of its maxConcurrentStreams streams' windows.

import t from 'tap';
import { DEFAULT_LIMITS } from '../../src/h2/limits.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectRawH2, FLAG, FRAME } from '../helpers/raw-h2.js';
import { connectOurClient, readBody, startOurServer, tlsPair, waitFor } from './fixtures/h2-helpers.js';

const WINDOW = DEFAULT_LIMITS.initialWindowSize;
const SLOW = 16;
/** Twice a stream window: each slow stream would hold 8 MiB / SLOW at 1 MiB stream windows. */
const SLOW_BODY = Buffer.alloc(Math.max(2 * WINDOW, (8 << 20) / SLOW), 0x73);
const FAST_BODY = Buffer.alloc(4 << 20, 0x66);

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => {}); // if it fails after the timeout (the connection torn down), not an unhandled rejection
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

t.test(`${SLOW} answers nobody reads do not stall a ${SLOW + 1}th that is read (our client receiving)`, async (t) => {
  const server = await startOurServer((stream, headers) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.end(headers[':path'] === '/fast' ? FAST_BODY : SLOW_BODY);
  }, { tls: true });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const request = (path: string): H2Stream => {
    const s = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': path }, { endStream: true });
    s.on('error', () => {});
    return s;
  };
  const slow = Array.from({ length: SLOW }, (_, i) => request(`/slow/${i}`));
  // each fills its stream window, or together they fill the connection's
  const full = Math.min(SLOW * WINDOW, conn.limits.connectionWindowSize);
  await waitFor(() => slow.reduce((sum, s) => sum + s.dataReceived, 0) >= full, 'the slow answers to fill their windows');
  const fast = await within(readBody(request('/fast')), 5_000, 'the answer that is read');
  t.equal(fast.length, FAST_BODY.length, `the read answer (${FAST_BODY.length >> 20} MiB) arrived whole beside ${SLOW} unread ones`);
  t.ok(
    slow.every((s) => s.readableLength === WINDOW),
    `each unread answer holds its own stream window (${WINDOW >> 10} KiB) and no more`,
  );
  const bodies = await Promise.all(slow.map((s) => readBody(s)));
  t.ok(bodies.every((b) => b.length === SLOW_BODY.length), 'and the unread ones complete once read');
});

t.test(`${SLOW} uploads nobody reads do not stall a ${SLOW + 1}th that is read (our server receiving)`, async (t) => {
  const slow: H2Stream[] = [];
  const server = await startOurServer((stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'] !== '/fast') return void slow.push(stream);
    readBody(stream).then(
      (body) => {
        stream.respond({ ':status': 200 });
        stream.end(String(body.length));
      },
      () => {}, // the connection torn down (the client gave up)
    );
  }, { tls: true });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const upload = (path: string, body: Buffer): H2Stream => {
    const s = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': path });
    s.on('error', () => {});
    s.end(body);
    return s;
  };
  for (let i = 0; i < SLOW; i++) upload(`/slow/${i}`, SLOW_BODY);
  const full = Math.min(SLOW * WINDOW, DEFAULT_LIMITS.connectionWindowSize);
  await waitFor(() => slow.reduce((sum, s) => sum + s.dataReceived, 0) >= full, 'the slow uploads to fill their windows');
  const fast = upload('/fast', FAST_BODY);
  const answer = await within(readBody(fast), 5_000, 'the upload that is read');
  t.equal(answer.toString(), String(FAST_BODY.length), `the read upload (${FAST_BODY.length >> 20} MiB) arrived whole beside ${SLOW} unread ones`);
  t.ok(
    slow.every((s) => s.readableLength === WINDOW),
    `each unread upload holds its own stream window (${WINDOW >> 10} KiB) and no more`,
  );
});

t.test('the connection window a server announces holds every stream it allows, up to 64 MiB', async (t) => {
  for (const limits of [{}, { maxConcurrentStreams: 200 }, { maxConcurrentStreams: 8192 }, { maxConcurrentStreams: 10, initialWindowSize: 1 << 20 }]) {
    const server = await startOurServer(() => {}, { tls: true, limits });
    const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
    const update = await raw.waitFor((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 0, 'the connection WINDOW_UPDATE');
    const settings = await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0, 'the SETTINGS');
    const announced = new Map<number, number>();
    for (let i = 0; i < settings.payload.length; i += 6) announced.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    const streams = announced.get(0x3)!;
    const streamWindow = announced.get(0x4)!;
    // (a derived window stops at 64 MiB: 8,192 streams × 256 KiB would let one connection buffer 2 GiB)
    t.equal(65_535 + update.payload.readUInt32BE(0), Math.min(64 << 20, streams * streamWindow), `${JSON.stringify(limits)}: ${streams} streams × ${streamWindow >> 10} KiB, at most 64 MiB`);
    raw.destroy();
    await server.close();
  }
});
