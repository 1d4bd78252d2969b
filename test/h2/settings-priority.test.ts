// Review fixes of 2026-11-30 in src/h2, over mutual TLS with certificates from the test PKI:
// SETTINGS entries capped per frame and INITIAL_WINDOW_SIZE applied once per frame (overflow
// still caught at any value the frame sets); no RST_STREAM on an idle stream for a bad PRIORITY;
// trailers sent by a sendTrailers() called after the 'wantTrailers' listener returned, and refused
// before it; and, as a
// client against a server scripted by hand: DATA on HEAD/204/304 responses, a bound on 1xx
// responses, and a PRIORITY budget that grows with the streams the client opened.

import t from 'tap';
import { ErrorCode, MAX_WINDOW, SettingId } from '../../src/h2/constants.js';
import type { H2StreamError } from '../../src/h2/errors.js';
import type { IncomingHeaders } from '../../src/h2/headers.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { FLAG, FRAME, describe, errorCodeOf, frame, headerBlock, pingRoundTrip, requestHeaders, settingsFrame, type Frame } from '../helpers/raw-h2.js';
import { connectOurClient, rawClientOf, readBody, RecordingH2Observer, startOurServer, waitFor } from './fixtures/h2-helpers.js';
import { startRawH2Server } from './fixtures/raw-h2-server.js';

const PRIORITY = 2;
const GET = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/']] as const;
const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const isGoaway = (f: Frame): boolean => f.type === FRAME.GOAWAY;
const dataBytes = (frames: readonly Frame[], streamId: number): number => frames.reduce((n, f) => n + (f.type === FRAME.DATA && f.streamId === streamId ? f.payload.length : 0), 0);

t.test('SETTINGS: 32 entries per frame are fine, 33 are ENHANCE_YOUR_CALM (settings_flood)', async (t) => {
  const server = await startOurServer(() => {}, { tls: true });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  const entries = (n: number): Array<[number, number]> => Array.from({ length: n }, (_, i) => [SettingId.MAX_CONCURRENT_STREAMS, 100 + i]);
  raw.write(settingsFrame(entries(32)));
  await pingRoundTrip(raw, 1);
  t.same(server.observer.closed, [], '32 entries accepted');
  raw.write(settingsFrame(entries(33)));
  const goaway = await raw.waitFor(isGoaway, 'GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.ENHANCE_YOUR_CALM);
  await waitFor(() => server.observer.closed.length > 0, 'the close counted');
  t.same(server.observer.closed, [{ reason: 'settings_flood', code: ErrorCode.ENHANCE_YOUR_CALM }]);
});

t.test('SETTINGS_INITIAL_WINDOW_SIZE: the net change per frame reaches the streams; overflow at any value set is caught', async (t) => {
  const server = await startOurServer(
    (stream, headers) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/big') stream.end(Buffer.alloc(100_000, 1));
    },
    { tls: true },
  );
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  raw.write(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(1 << 20))); // only the stream window (65,535) holds the body
  raw.write(requestHeaders(1, [...GET.slice(0, 3), [':path', '/big']]));
  await waitFor(() => dataBytes(raw.frames, 1) === 65_535, 'one stream window of DATA');
  // raised then lowered again in one frame: no window opens, so no DATA may go out
  raw.write(settingsFrame([[SettingId.INITIAL_WINDOW_SIZE, 66_535], [SettingId.INITIAL_WINDOW_SIZE, 65_535]]));
  await pingRoundTrip(raw, 2);
  t.equal(dataBytes(raw.frames, 1), 65_535, 'no DATA beyond what the frame as a whole allows');
  // a stream window 10 below 2^31 − 1: the frame's net change is 0, its first entry overflows it
  raw.write(requestHeaders(3, [...GET.slice(0, 3), [':path', '/hold']]));
  await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 3, 'the head of stream 3');
  raw.write(frame(FRAME.WINDOW_UPDATE, 0, 3, u32(MAX_WINDOW - 10 - 65_535)));
  raw.write(settingsFrame([[SettingId.INITIAL_WINDOW_SIZE, 65_635], [SettingId.INITIAL_WINDOW_SIZE, 65_535]]));
  const goaway = await raw.waitFor(isGoaway, 'GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.FLOW_CONTROL_ERROR);
});

t.test('a bad PRIORITY on an idle stream is a connection error, never RST_STREAM on that idle stream', async (t) => {
  const server = await startOurServer(
    (stream) => {
      stream.on('error', () => {}); // stream 1 is reset with FRAME_SIZE_ERROR
      stream.respond({ ':status': 200 });
    },
    { tls: true },
  );
  t.teardown(server.close);
  const wrongLength = await rawClientOf(t, server.port);
  wrongLength.write(requestHeaders(1, GET));
  await wrongLength.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the head of stream 1');
  wrongLength.write(frame(PRIORITY, 0, 1, Buffer.alloc(0)));
  const rst = await wrongLength.waitFor((f) => f.type === FRAME.RST_STREAM, 'RST_STREAM on the open stream');
  t.same([rst.streamId, errorCodeOf(rst)], [1, ErrorCode.FRAME_SIZE_ERROR], 'on an open stream: a stream error (RFC 9113 §6.3)');
  wrongLength.write(frame(PRIORITY, 0, 101, Buffer.alloc(0)));
  t.equal(errorCodeOf(await wrongLength.waitFor(isGoaway, 'GOAWAY')), ErrorCode.FRAME_SIZE_ERROR, 'on idle stream 101: GOAWAY FRAME_SIZE_ERROR');
  const selfDependent = await rawClientOf(t, server.port);
  selfDependent.write(frame(PRIORITY, 0, 103, Buffer.concat([u32(103), Buffer.from([16])])));
  t.equal(errorCodeOf(await selfDependent.waitFor(isGoaway, 'GOAWAY')), ErrorCode.PROTOCOL_ERROR, 'self-dependent on idle stream 103: GOAWAY PROTOCOL_ERROR');
  for (const raw of [wrongLength, selfDependent]) {
    const idleResets = raw.frames.filter((f) => f.type === FRAME.RST_STREAM && f.streamId > 1);
    t.same(idleResets, [], `no RST_STREAM on an idle stream: ${describe(raw.frames)}`);
  }
});

t.test('waitForTrailers: sendTrailers() called after the listener returned still sends the trailers (both roles)', async (t) => {
  let requestTrailers: IncomingHeaders | undefined;
  const server = await startOurServer(
    (stream) => {
      stream.on('trailers', (trailers: IncomingHeaders) => (requestTrailers = trailers));
      void readBody(stream).then(() => {
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.on('wantTrailers', () => setImmediate(() => stream.sendTrailers({ 'x-late': 'server' })));
        stream.end('response body');
      });
    },
    { tls: true },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const s = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'localhost', ':path': '/' }, { waitForTrailers: true });
  s.on('wantTrailers', () => setImmediate(() => s.sendTrailers({ 'x-late': 'client' })));
  let responseTrailers: IncomingHeaders | undefined;
  s.on('trailers', (trailers: IncomingHeaders) => (responseTrailers = trailers)); // before the body's end
  s.end('request body');
  t.equal((await readBody(s)).toString(), 'response body');
  t.equal(responseTrailers?.['x-late'], 'server', "the server's late trailers arrived");
  t.equal(requestTrailers?.['x-late'], 'client', "the client's late trailers arrived");
});

t.test("sendTrailers() before 'wantTrailers' throws and sends nothing: the queued body goes out first, then the trailers", async (t) => {
  const body = Buffer.alloc(600_000, 7); // more than the stream window: a chunk stays queued
  let early = '';
  const server = await startOurServer(
    (stream) => {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.write(body);
      try {
        stream.sendTrailers({ 'x-early': 'yes' });
      } catch (err) {
        early = (err as Error).message;
      }
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-on-time': 'yes' }));
      stream.end();
    },
    { tls: true },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const s = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'localhost', ':path': '/' });
  let trailers: IncomingHeaders | undefined;
  s.on('trailers', (got: IncomingHeaders) => (trailers = got));
  s.end();
  const received = await readBody(s);
  t.match(early, /before 'wantTrailers'/, 'the early call threw');
  t.equal(received.length, body.length, 'the whole body arrived');
  t.equal(trailers?.['x-early'], undefined, 'the early trailers were not sent');
  t.equal(trailers?.['x-on-time'], 'yes', "the trailers sent on 'wantTrailers' arrived after the body");
});

/** How a client stream ended: its body, or its error's reason. */
function outcome(stream: H2Stream): Promise<string> {
  return new Promise((resolve) => {
    stream.on('error', (err: H2StreamError) => resolve(`error ${err.reason}`));
    readBody(stream).then((body) => resolve(`body '${body.toString()}'`), () => {});
  });
}

t.test('client: DATA on a response to HEAD, or with 204 or 304, is a stream error (content-length 0)', async (t) => {
  const answers: Record<number, Buffer[]> = {
    1: [headerBlock([[':status', '200'], ['content-length', '5']]), Buffer.from('hello')], // HEAD
    3: [headerBlock([[':status', '204']]), Buffer.from('x')],
    5: [headerBlock([[':status', '304'], ['content-length', '5']]), Buffer.from('hello')],
    7: [headerBlock([[':status', '200'], ['content-length', '5']]), Buffer.alloc(0)], // HEAD, no body: fine
    9: [headerBlock([[':status', '200'], ['content-length', '5']]), Buffer.from('hello')], // GET: fine
  };
  const server = await startRawH2Server((f, side) => {
    const answer = f.type === FRAME.HEADERS ? answers[f.streamId] : undefined;
    if (answer) side.send(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, f.streamId, answer[0]), frame(FRAME.DATA, FLAG.END_STREAM, f.streamId, answer[1])]));
  });
  t.teardown(server.close);
  const observer = new RecordingH2Observer();
  const conn = await connectOurClient(server.port, { tls: true, observer });
  t.teardown(() => conn.destroy());
  const methods = ['HEAD', 'GET', 'GET', 'HEAD', 'GET'];
  const results = await Promise.all(methods.map((method) => outcome(conn.request({ ...Object.fromEntries(GET), ':method': method }, { endStream: true }))));
  t.same(results, ['error content_length_mismatch', 'error content_length_mismatch', 'error content_length_mismatch', "body ''", "body 'hello'"]);
  const side = await server.side();
  await waitFor(() => side.frames.filter((f) => f.type === FRAME.RST_STREAM).length === 3, 'three RST_STREAM');
  t.same(side.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => [f.streamId, errorCodeOf(f)]), [1, 3, 5].map((id) => [id, ErrorCode.PROTOCOL_ERROR]));
});

t.test('client: 1xx responses are bounded per stream (their heads together within one header list)', async (t) => {
  const early = headerBlock([[':status', '103'], ['link', 'l'.repeat(4000)]]);
  const server = await startRawH2Server((f, side) => {
    if (f.type !== FRAME.HEADERS) return;
    // 17 × ~4 KB passes 64 KiB at the 17th; then only the final head follows on the reset stream
    // (a closed stream's late frames are ignored within a few header blocks: closed-streams.test.ts)
    const many = f.streamId === 1 ? 17 : 3;
    const informational = Array.from({ length: many }, () => frame(FRAME.HEADERS, FLAG.END_HEADERS, f.streamId, early));
    const final = frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, f.streamId, headerBlock([[':status', '200']]));
    side.send(Buffer.concat([...informational, final]));
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const counts: number[] = [];
  const results = await Promise.all(
    [0, 1].map((i) => {
      const s = conn.request(Object.fromEntries(GET), { endStream: true });
      counts[i] = 0;
      s.on('headers', () => counts[i]!++);
      return outcome(s);
    }),
  );
  t.same(results, ['error header_list_too_large', "body ''"]);
  t.same(counts, [16, 3], 'the first 16 informational heads reached the user, then the stream was reset');
  const side = await server.side();
  await waitFor(() => side.frames.some((f) => f.type === FRAME.RST_STREAM), 'RST_STREAM');
  t.same(side.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => [f.streamId, errorCodeOf(f)]), [[1, ErrorCode.PROTOCOL_ERROR]]);
});

t.test("client: the PRIORITY budget grows with the streams it opened; a flood still ends the connection", async (t) => {
  const server = await startRawH2Server((f, side) => {
    if (f.type === FRAME.HEADERS) side.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, f.streamId, headerBlock([[':status', '200']])));
  });
  t.teardown(server.close);
  const observer = new RecordingH2Observer();
  const conn = await connectOurClient(server.port, { tls: true, observer });
  t.teardown(() => conn.destroy());
  for (let i = 0; i < 3; i++) t.equal(await outcome(conn.request(Object.fromEntries(GET), { endStream: true })), "body ''");
  const side = await server.side();
  const priority = frame(PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16]));
  const burst = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => priority));
  side.send(burst(350)); // within 100 per stream opened (3), plus 100
  await new Promise<void>((resolve, reject) => conn.ping((err) => (err ? reject(err) : resolve())));
  t.same(observer.closed, [], '350 PRIORITY frames after 3 streams: the connection lives');
  side.send(burst(100));
  await waitFor(() => observer.closed.length > 0, 'the flood to end the connection');
  t.same(observer.closed, [{ reason: 'priority_flood', code: ErrorCode.ENHANCE_YOUR_CALM }]);
});
