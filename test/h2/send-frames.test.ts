// What our server sends, frame by frame, seen by a raw HTTP/2 client over mutual TLS
// (test/helpers/raw-h2.ts): a response without trailers ends with DATA END_STREAM, never an
// empty HEADERS frame; a buffer a writer reuses once its write callback ran still goes out as
// it was written (Node's Writable contract), also when the stream is reset with part of it framed, and END_STREAM still rides on the last DATA frame
// of such a body; heads that HTTP/2 forbids are refused with a stable error before anything is sent.

import t from 'tap';
import type { H2Stream } from '../../src/h2/stream.js';
import { FLAG, FRAME, describe, requestHeaders, type Frame } from '../helpers/raw-h2.js';
import { rawClientOf, startOurServer } from './fixtures/h2-helpers.js';

const refusals: string[] = [];

function handler(stream: H2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => {});
  const path = String(headers[':path']);
  const refused = (fn: () => void): void => {
    try {
      fn();
      refusals.push('sent');
    } catch (err) {
      refusals.push((err as { code?: string }).code ?? String(err));
    }
  };
  if (path === '/empty-trailers' || path === '/empty-trailers-big') {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({}));
    stream.end(path === '/empty-trailers' ? 'short body' : Buffer.alloc(4096, 0x62));
  } else if (path === '/reuse') {
    // each buffer is scribbled over as soon as its callback says it may be reused
    stream.respond({ ':status': 200 });
    for (let i = 0; i < 4; i++) {
      const b = Buffer.alloc(8192, 0x61);
      stream.write(b, () => b.fill(0x7a, 0, 100));
    }
    const shared = Buffer.alloc(2048, 0x61);
    stream.write(shared, () => shared.fill(0x7a));
    stream.end();
  } else if (path === '/reuse-reset') {
    // framed up to the stream's window (four DATA frames held by reference), then reset in the
    // same turn, before the batch leaves: the buffer is scribbled over in its callback
    stream.respond({ ':status': 200 });
    const b = Buffer.alloc(100_000, 0x61);
    stream.write(b, () => b.fill(0x7a));
    stream.destroy();
  } else if (path === '/end-big') {
    stream.respond({ ':status': 200 });
    stream.end(Buffer.alloc(4096, 0x61));
  } else if (path === '/write-end-big') {
    stream.respond({ ':status': 200 });
    stream.write(Buffer.alloc(4096, 0x61));
    stream.end();
  } else if (path === '/bad-heads') {
    refused(() => stream.respond({ 'x-a': '1' }));
    refused(() => stream.respond({ ':status': 200, ':path': '/x' }));
    refused(() => stream.respond(['x-a', '1']));
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      refused(() => stream.sendTrailers({ ':status': '200' }));
      refused(() => stream.sendTrailers([':path', '/x', 'x-t', '1']));
      stream.sendTrailers({ 'x-t': '1' });
    });
    stream.end('body');
  }
}

const GET = (path: string): Array<[string, string]> => [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', path],
  [':authority', 'x'],
];

const ends = (f: Frame, id: number) => f.streamId === id && (f.type === FRAME.DATA || f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM) && (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0);
const ofStream = (frames: Frame[], id: number) => frames.filter((f) => f.streamId === id && f.type !== FRAME.WINDOW_UPDATE);
const names = (frames: Frame[]) => frames.map((f) => `${f.type === FRAME.DATA ? 'DATA' : f.type === FRAME.HEADERS ? 'HEADERS' : f.type}${f.flags & FLAG.END_STREAM ? '+END' : ''}`);

/** GETs `paths` on streams 1, 3, ... of one raw connection to our server; resolves with its frames once every stream ended. */
async function framesOf(t: { teardown(fn: () => void): void }, ...paths: string[]): Promise<Frame[]> {
  const server = await startOurServer(handler, { tls: true });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  paths.forEach((path, i) => raw.write(requestHeaders(2 * i + 1, GET(path))));
  for (let i = 0; i < paths.length; i++) await raw.waitFor((f) => ends(f, 2 * i + 1), `stream ${2 * i + 1} ends`);
  return raw.frames;
}

t.test('no trailers: the stream ends with DATA END_STREAM, not an empty HEADERS frame', async (t) => {
  const frames = await framesOf(t, '/empty-trailers', '/empty-trailers-big');
  for (const id of [1, 3]) {
    const own = ofStream(frames, id);
    t.equal(own.filter((f) => f.type === FRAME.HEADERS).length, 1, `stream ${id}: only the response head is a HEADERS frame (${describe(own)})`);
    const last = own[own.length - 1]!;
    t.ok(last.type === FRAME.DATA && (last.flags & FLAG.END_STREAM) !== 0, `stream ${id}: the last frame is DATA END_STREAM (${names(own).join(' ')})`);
  }
  t.equal(
    ofStream(frames, 1)
      .filter((f) => f.type === FRAME.DATA)
      .map((f) => f.payload.toString())
      .join(''),
    'short body',
  );
});

t.test('a buffer reused once its write callback ran goes out as it was written', async (t) => {
  const frames = await framesOf(t, '/reuse');
  const body = Buffer.concat(ofStream(frames, 1).filter((f) => f.type === FRAME.DATA).map((f) => f.payload));
  t.equal(body.length, 4 * 8192 + 2048, 'the whole body');
  t.equal(body.indexOf(0x7a), -1, 'no byte written after a callback reached the peer');
});

t.test('a stream reset with part of a chunk framed: the buffer is the writer\'s again only once those frames left', async (t) => {
  const frames = await framesOf(t, '/reuse-reset');
  const own = ofStream(frames, 1);
  const body = Buffer.concat(own.filter((f) => f.type === FRAME.DATA).map((f) => f.payload));
  t.ok(body.length > 16_384, `part of the chunk went out before the reset (${body.length} bytes)`);
  t.equal(body.indexOf(0x7a), -1, 'none of it written after the callback');
  t.equal(own[own.length - 1]?.type, FRAME.RST_STREAM, 'then RST_STREAM');
});

t.test('a body ending with a chunk held by reference: END_STREAM still rides on its last DATA frame', async (t) => {
  const frames = await framesOf(t, '/end-big', '/write-end-big');
  t.same(names(ofStream(frames, 1)), ['HEADERS', 'DATA+END'], 'end(chunk): no empty DATA frame of its own');
  t.same(names(ofStream(frames, 3)), ['HEADERS', 'DATA+END'], 'write(chunk), end()');
});

t.test('heads HTTP/2 forbids are refused before anything is sent: a response without :status or with a request pseudo-header, trailers with pseudo-headers', async (t) => {
  refusals.length = 0;
  const frames = await framesOf(t, '/bad-heads');
  t.same(refusals, ['ERR_H2_INVALID_HEADER', 'ERR_H2_INVALID_HEADER', 'ERR_H2_INVALID_HEADER', 'ERR_H2_INVALID_HEADER', 'ERR_H2_INVALID_HEADER'], 'each refused with the stable code');
  t.same(names(ofStream(frames, 1)), ['HEADERS', 'DATA', 'HEADERS+END'], 'then the valid head, body and trailers, nothing else');
});
