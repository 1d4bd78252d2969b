// Violations the other hostile-peer tests leave out, over mutual TLS with the test PKI: a
// WINDOW_UPDATE on an idle stream (a connection error, RFC 9113 §5.1); DATA after the peer's
// own END_STREAM, repeated until the peer has made us reset more streams than it completed
// (MadeYouReset through another provocation than WINDOW_UPDATE(0)); request trailers past the
// header list limit (a stream error that leaves HPACK in step: the next request on the same
// connection is answered); and, as a client, a response head past our limit (the same).

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import { FLAG, FRAME, errorCodeOf, frame, headerBlock, requestHeaders, type Frame } from '../helpers/raw-h2.js';
import { connectOurClient, ourRequest, rawClientOf, startOurServer, waitFor } from './fixtures/h2-helpers.js';
import { startRawH2Server } from './fixtures/raw-h2-server.js';

const GET: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/']];
const POST: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/upload']];
const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const isGoaway = (f: Frame): boolean => f.type === FRAME.GOAWAY;
const headersOn = (id: number) => (f: Frame) => f.type === FRAME.HEADERS && f.streamId === id;

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return out;
}

/** A literal field with incremental indexing and a new name (RFC 7541 §6.2.1), no Huffman. */
function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), Buffer.from(hpackInt(name.length, 7, 0)), Buffer.from(name, 'latin1'), Buffer.from(hpackInt(value.length, 7, 0)), Buffer.from(value, 'latin1')]);
}

t.test('WINDOW_UPDATE on an idle stream is a connection error (PROTOCOL_ERROR)', async (t) => {
  const server = await startOurServer(() => {}, { tls: true });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  raw.write(frame(FRAME.WINDOW_UPDATE, 0, 7, u32(1000)));
  t.equal(errorCodeOf(await raw.waitFor(isGoaway, 'GOAWAY')), ErrorCode.PROTOCOL_ERROR);
  await waitFor(() => server.observer.closed.length > 0, 'the close counted');
  t.same(server.observer.closed, [{ reason: 'protocol_error', code: ErrorCode.PROTOCOL_ERROR }]);
  t.notOk(raw.frames.some((f) => f.type === FRAME.RST_STREAM), 'no RST_STREAM on the idle stream');
});

t.test('DATA after the peer’s own END_STREAM: STREAM_CLOSED each time, then MadeYouReset ends the connection', async (t) => {
  // the handler never answers: each stream stays half-closed (remote), where DATA is a stream error
  const server = await startOurServer((stream) => stream.on('error', () => {}), { tls: true, limits: { maxResetsPerWindow: 20, maxConcurrentStreams: 1000 } });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  const provoke = (id: number) => Buffer.concat([requestHeaders(id, GET, true), frame(FRAME.DATA, 0, id, Buffer.from('late'))]);
  raw.write(provoke(1));
  const first = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'RST_STREAM on stream 1');
  t.equal(errorCodeOf(first), ErrorCode.STREAM_CLOSED, 'a stream error, STREAM_CLOSED');
  t.notOk(raw.frames.some(isGoaway), 'one provoked reset: the connection stays');
  for (let id = 3; id <= 61; id += 2) raw.write(provoke(id));
  const goaway = await raw.waitFor(isGoaway, 'GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.ENHANCE_YOUR_CALM);
  await waitFor(() => server.observer.closed.length > 0, 'the close counted');
  t.same(server.observer.closed, [{ reason: 'made_you_reset', code: ErrorCode.ENHANCE_YOUR_CALM }]);
});

t.test('request trailers past the header list limit: a stream error, and HPACK stays in step', async (t) => {
  const heads: Array<Record<string, unknown>> = [];
  const server = await startOurServer(
    (stream, headers) => {
      heads.push(headers);
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    },
    { tls: true, limits: { maxHeaderListSize: 4096 } },
  );
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  raw.write(requestHeaders(1, POST, false));
  raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('body')));
  // literal fields with incremental indexing: a decoder that skipped them would lose the table
  // (the table then holds x-big and, after it, x-keep; the next request refers to x-keep by index)
  const big = Buffer.concat([literalIndexed('x-big', 'a'.repeat(8000)), literalIndexed('x-keep', 'k')]);
  raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, big));
  const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'RST_STREAM on stream 1');
  t.not(errorCodeOf(rst), ErrorCode.NO_ERROR, `stream 1 reset (code ${errorCodeOf(rst)})`);
  // dynamic index 62 is the newest entry: x-keep only if the refused block was decoded to its end
  raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, Buffer.concat([headerBlock(GET.slice(0, 3).concat([[':path', '/after']])), Buffer.from([0x80 | 62])])));
  await raw.waitFor(headersOn(3), 'the next request answered on the same connection');
  t.equal(heads.at(-1)?.['x-keep'], 'k', 'its indexed field is the one the refused block added');
  t.notOk(raw.frames.some(isGoaway), 'no GOAWAY: the connection survived');
});

t.test('client: a response head past our header list limit is a stream error; the next request is answered', async (t) => {
  const server = await startRawH2Server((f, side) => {
    if (f.type !== FRAME.HEADERS) return;
    const fields: Array<[string, string]> = [[':status', '200']];
    if (f.streamId === 1) fields.push(['x-big', 'a'.repeat(8000)]);
    side.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, f.streamId, headerBlock(fields)));
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true, limits: { maxHeaderListSize: 4096 } });
  t.teardown(() => conn.destroy());
  const first = await ourRequest(conn, Object.fromEntries(GET)).then(
    () => 'answered',
    (err: { reason?: string }) => `error ${err.reason}`,
  );
  t.equal(first, 'error header_list_too_large', 'the oversized head is refused');
  const second = await ourRequest(conn, Object.fromEntries(GET));
  t.equal(second.headers[':status'], '200', 'the next response on the same connection decodes');
});
