// An h2spec-style sweep of RFC 9113 against our codec as the server (the inbound's role), over
// mutual TLS with the test PKI, a raw client writing frames by hand. Only the points no other
// test covers: frames.test.ts checks the reader's codes for lone frames, conformance-python and
// hostile-gaps the stream-id, flood, window-overflow, malformed-head and closed-stream cases,
// field-syntax the field characters, hpack*.test.ts RFC 7541. Each case states the RFC's answer
// (a connection error with its GOAWAY code, a stream error with its RST_STREAM code, or the
// frame accepted and the connection still answering PING) and the reason the observer counts
// (meshcar_http2_sessions_closed_total / stream_errors_total).

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import { FLAG, FRAME, describe, errorCodeOf, frame, headerBlock, pingRoundTrip, requestHeaders, type Frame, type RawH2Connection } from '../helpers/raw-h2.js';
import { rawClientOf, startOurServer, waitFor } from './fixtures/h2-helpers.js';

const { PROTOCOL_ERROR, FRAME_SIZE_ERROR, STREAM_CLOSED } = ErrorCode;
const PRIORITY = 0x2;
const CONTINUATION = 0x9;
const EH = FLAG.END_HEADERS;
const ES = FLAG.END_STREAM;
const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const prio = (dependency: number): Buffer => Buffer.concat([u32(dependency), Buffer.from([15])]);
const settings = (id: number, value: number): Buffer => frame(FRAME.SETTINGS, 0, 0, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), u32(value)]));
const req = (path: string, method = 'GET'): Array<[string, string]> => [[':method', method], [':scheme', 'https'], [':authority', 'localhost'], [':path', path]];
/** Answered at once; /hold is never answered (its stream stays open, or half-closed (remote)). */
const GET = req('/');
const HOLD = req('/hold');
const UPLOAD = req('/hold', 'POST');
const TRAILER: Array<[string, string]> = [['x-t', '1']];
const endOf = (id: number) => (f: Frame) => f.streamId === id && (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & ES) !== 0;

type Expected = { goaway: number; reason: string } | { rst: number; reason: string } | 'accepted';
type Step = (raw: RawH2Connection) => void | Promise<void>;
const send =
  (...frames: Buffer[]): Step =>
  (raw) =>
    raw.write(Buffer.concat(frames));
/** The request on stream 1 answered and ended both ways (closed), then `frames`. */
const afterClosed =
  (...frames: Buffer[]): Step =>
  async (raw) => {
    raw.write(requestHeaders(1, GET));
    await raw.waitFor(endOf(1), 'the answer on stream 1');
    raw.write(Buffer.concat(frames));
  };
const connection = (code: number, reason: string): Expected => ({ goaway: code, reason });
const stream = (code: number, reason: string): Expected => ({ rst: code, reason });

const cases: Array<[string, Step, Expected]> = [
  // §4.1 frame format: undefined flags and the reserved bit are ignored
  ['§4.1 PING with undefined flags is answered', async (raw) => {
    raw.write(frame(FRAME.PING, 0xfe, 0, Buffer.from('flags!!!')));
    await raw.waitFor((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0 && f.payload.toString() === 'flags!!!', 'its PING ACK');
  }, 'accepted'],
  ['§4.1 the reserved bit of a stream id is ignored', (raw) => raw.write(Buffer.concat([requestHeaders(1, GET).subarray(0, 5), u32(0x80000001), requestHeaders(1, GET).subarray(9)])), 'accepted'],
  // §4.2 frame size
  ['§4.2 DATA of exactly SETTINGS_MAX_FRAME_SIZE', send(requestHeaders(1, UPLOAD, false), frame(FRAME.DATA, 0, 1, Buffer.alloc(16_384))), 'accepted'],
  ['§4.2 HEADERS over SETTINGS_MAX_FRAME_SIZE', send(frame(FRAME.HEADERS, EH | ES, 1, Buffer.concat([headerBlock(GET), headerBlock([['x-a', 'a'.repeat(16_400)]])]))), connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §5.1 idle: PRIORITY is allowed
  ['§5.1 PRIORITY on an idle stream', send(frame(PRIORITY, 0, 3, prio(0))), 'accepted'],
  // §5.1 half-closed (remote): only WINDOW_UPDATE, PRIORITY and RST_STREAM
  ['§5.1 half-closed (remote): HEADERS', send(requestHeaders(1, HOLD), requestHeaders(1, TRAILER)), stream(STREAM_CLOSED, 'stream_closed')],
  ['§5.1 half-closed (remote): CONTINUATION', send(requestHeaders(1, HOLD), frame(CONTINUATION, EH, 1, headerBlock(TRAILER))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 half-closed (remote): WINDOW_UPDATE', send(requestHeaders(1, HOLD), frame(FRAME.WINDOW_UPDATE, 0, 1, u32(1))), 'accepted'],
  ['§5.1 half-closed (remote): PRIORITY', send(requestHeaders(1, HOLD), frame(PRIORITY, 0, 1, prio(0))), 'accepted'],
  ['§5.1 half-closed (remote): RST_STREAM', send(requestHeaders(1, HOLD), frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL))), 'accepted'],
  // §5.1 closed by the peer's RST_STREAM: any frame but PRIORITY is STREAM_CLOSED
  ['§5.1 closed by RST_STREAM: DATA', send(requestHeaders(1, UPLOAD, false), frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL)), frame(FRAME.DATA, 0, 1, Buffer.from('x'))), stream(STREAM_CLOSED, 'stream_closed')],
  ['§5.1 closed by RST_STREAM: CONTINUATION', send(requestHeaders(1, UPLOAD, false), frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL)), frame(CONTINUATION, EH, 1, headerBlock(TRAILER))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 closed by RST_STREAM: PRIORITY', send(requestHeaders(1, UPLOAD, false), frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL)), frame(PRIORITY, 0, 1, prio(0))), 'accepted'],
  // §5.1 closed after END_STREAM both ways: PRIORITY, and WINDOW_UPDATE and RST_STREAM that crossed our END_STREAM
  ['§5.1 closed: PRIORITY', afterClosed(frame(PRIORITY, 0, 1, prio(0))), 'accepted'],
  ['§5.1 closed: WINDOW_UPDATE', afterClosed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(1))), 'accepted'],
  ['§5.1 closed: RST_STREAM', afterClosed(frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL))), 'accepted'],
  ['§5.1 closed: CONTINUATION', afterClosed(frame(CONTINUATION, EH, 1, headerBlock(TRAILER))), connection(PROTOCOL_ERROR, 'protocol_error')],
  // §5.3.1 a stream cannot depend on itself, the exclusive bit set or not
  ['§5.3.1 HEADERS depending on its own stream', send(frame(FRAME.HEADERS, EH | ES | FLAG.PRIORITY, 1, Buffer.concat([prio(1), headerBlock(HOLD)]))), stream(PROTOCOL_ERROR, 'priority_self_dependency')],
  ['§5.3.1 PRIORITY depending on its own stream, exclusive', send(requestHeaders(1, HOLD), frame(PRIORITY, 0, 1, prio(0x80000001))), stream(PROTOCOL_ERROR, 'priority_self_dependency')],
  // §6.1 DATA padding
  ['§6.1 DATA whose padding fills all but the pad length', send(requestHeaders(1, UPLOAD, false), frame(FRAME.DATA, FLAG.PADDED, 1, Buffer.from([2, 0, 0]))), 'accepted'],
  ['§6.1 PADDED DATA without its pad length', send(requestHeaders(1, UPLOAD, false), frame(FRAME.DATA, FLAG.PADDED, 1)), connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §6.2 HEADERS: stream 0, padding, priority fields
  ['§6.2 HEADERS on stream 0', send(frame(FRAME.HEADERS, EH | ES, 0, headerBlock(GET))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.2 HEADERS padding as long as the payload', send(frame(FRAME.HEADERS, EH | ES | FLAG.PADDED, 1, Buffer.concat([Buffer.from([headerBlock(GET).length + 1]), headerBlock(GET)]))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.2 HEADERS padded and with priority', send(frame(FRAME.HEADERS, EH | ES | FLAG.PADDED | FLAG.PRIORITY, 1, Buffer.concat([Buffer.from([3]), prio(0), headerBlock(GET), Buffer.alloc(3)]))), 'accepted'],
  ['§6.2 HEADERS padding past the priority fields', send(frame(FRAME.HEADERS, EH | ES | FLAG.PADDED | FLAG.PRIORITY, 1, Buffer.concat([Buffer.from([2]), prio(0), Buffer.alloc(1)]))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.2 HEADERS too short for its priority fields', send(frame(FRAME.HEADERS, EH | ES | FLAG.PADDED | FLAG.PRIORITY, 1, Buffer.from([0, 0, 0, 0, 0]))), connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §6.3 PRIORITY
  ['§6.3 PRIORITY on stream 0', send(frame(PRIORITY, 0, 0, prio(1))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.3 PRIORITY of 4 bytes on an open stream', send(requestHeaders(1, HOLD), frame(PRIORITY, 0, 1, u32(0))), stream(FRAME_SIZE_ERROR, 'frame_size_error')],
  ['§6.3 PRIORITY of 6 bytes on an open stream', send(requestHeaders(1, HOLD), frame(PRIORITY, 0, 1, Buffer.alloc(6))), stream(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §6.4 RST_STREAM
  ['§6.4 RST_STREAM on stream 0', send(frame(FRAME.RST_STREAM, 0, 0, u32(ErrorCode.CANCEL))), connection(PROTOCOL_ERROR, 'protocol_error')],
  // §6.5 SETTINGS
  ['§6.5 SETTINGS on a stream', send(frame(FRAME.SETTINGS, 0, 1)), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5 an unsolicited SETTINGS ACK', send(frame(FRAME.SETTINGS, FLAG.ACK, 0)), 'accepted'],
  ['§6.5.2 SETTINGS_ENABLE_PUSH 2', send(settings(0x2, 2)), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5.2 SETTINGS_ENABLE_PUSH 1 from a client', send(settings(0x2, 1)), 'accepted'],
  ['§6.5.2 SETTINGS_MAX_FRAME_SIZE 2^24', send(settings(0x5, 1 << 24)), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5.2 an unknown setting', send(settings(0xff, 1)), 'accepted'],
  ['RFC 8441 SETTINGS_ENABLE_CONNECT_PROTOCOL 2', send(settings(0x8, 2)), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5.2 SETTINGS_HEADER_TABLE_SIZE 2^32 − 1', send(settings(0x1, 0xffffffff), requestHeaders(1, GET)), 'accepted'],
  // §6.7 PING
  ['§6.7 PING on a stream', send(frame(FRAME.PING, 0, 1, Buffer.alloc(8))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.7 a PING ACK nobody asked for gets no answer', send(frame(FRAME.PING, FLAG.ACK, 0, Buffer.from('unasked!'))), 'accepted'],
  // §6.8 GOAWAY
  ['§6.8 GOAWAY shorter than 8 bytes', send(frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(7))), connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §6.9 WINDOW_UPDATE
  ['§6.9 WINDOW_UPDATE of 0 on the connection', send(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.9 WINDOW_UPDATE of 3 bytes on a stream', send(requestHeaders(1, HOLD), frame(FRAME.WINDOW_UPDATE, 0, 1, Buffer.alloc(3))), connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // §6.10 CONTINUATION
  ['§6.10 a block in three frames', (raw) => {
    const b = headerBlock(GET);
    raw.write(Buffer.concat([frame(FRAME.HEADERS, ES, 1, b.subarray(0, 5)), frame(CONTINUATION, 0, 1, b.subarray(5, 10)), frame(CONTINUATION, EH, 1, b.subarray(10))]));
  }, 'accepted'],
  ['§6.10 DATA inside a header block', send(frame(FRAME.HEADERS, 0, 1, headerBlock(UPLOAD)), frame(FRAME.DATA, 0, 1, Buffer.from('x'))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.10 CONTINUATION on stream 0 inside a header block', send(frame(FRAME.HEADERS, ES, 1, headerBlock(GET)), frame(CONTINUATION, EH, 0)), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.10 CONTINUATION after END_HEADERS', send(requestHeaders(1, HOLD), frame(CONTINUATION, EH, 1, headerBlock(TRAILER))), connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.10 CONTINUATION after DATA', send(requestHeaders(1, UPLOAD, false), frame(FRAME.DATA, 0, 1, Buffer.from('x')), frame(CONTINUATION, EH, 1, headerBlock(TRAILER))), connection(PROTOCOL_ERROR, 'protocol_error')],
  // §8.1 a second HEADERS without END_STREAM (trailers must end the stream)
  ['§8.1 trailers without END_STREAM', send(requestHeaders(1, UPLOAD, false), requestHeaders(1, TRAILER, false)), stream(PROTOCOL_ERROR, 'trailers_without_end_stream')],
  // §8.1.1 content-length against the DATA actually sent
  ['§8.1.1 content-length below two DATA frames', send(requestHeaders(1, [...UPLOAD, ['content-length', '4']], false), frame(FRAME.DATA, 0, 1, Buffer.from('ab')), frame(FRAME.DATA, ES, 1, Buffer.from('abc'))), stream(PROTOCOL_ERROR, 'content_length_mismatch')],
  ['§8.1.1 content-length 4 and END_STREAM on the head', send(requestHeaders(1, [...UPLOAD, ['content-length', '4']])), stream(PROTOCOL_ERROR, 'content_length_mismatch')],
  ['§8.1.1 content-length above the body, ended by trailers', send(requestHeaders(1, [...UPLOAD, ['content-length', '4']], false), frame(FRAME.DATA, 0, 1, Buffer.from('ab')), requestHeaders(1, TRAILER)), stream(PROTOCOL_ERROR, 'content_length_mismatch')],
  // §8.2 field validity and connection-specific fields
  ...(['keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'].map((name): [string, Step, Expected] => [`§8.2.2 ${name}`, send(requestHeaders(1, [...GET, [name, 'x']])), stream(PROTOCOL_ERROR, 'malformed_headers')])),
  ['§8.2.2 te: trailers', send(requestHeaders(1, [...GET, ['te', 'trailers']])), 'accepted'],
  ['§8.2.1 a colon inside a name', send(requestHeaders(1, [...GET, ['x:a', '1']])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.2.1 an empty name', send(requestHeaders(1, [...GET, ['', '1']])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.2.1 a value starting with a space', send(requestHeaders(1, [...GET, ['x-a', ' 1']])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.2.1 a value ending with a tab', send(requestHeaders(1, [...GET, ['x-a', '1\t']])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  // §8.3.1 request pseudo-headers
  ['§8.3.1 no :method', send(requestHeaders(1, GET.slice(1))), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.3.1 no :scheme', send(requestHeaders(1, GET.filter(([n]) => n !== ':scheme'))), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.3.1 two :method', send(requestHeaders(1, [...GET, [':method', 'GET']])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.3.1 two :scheme', send(requestHeaders(1, [[':scheme', 'https'], ...GET])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.3.1 two :authority', send(requestHeaders(1, [[':authority', 'a'], ...GET])), stream(PROTOCOL_ERROR, 'malformed_headers')],
  ['§8.5 CONNECT with :path', send(requestHeaders(1, [[':method', 'CONNECT'], [':authority', 'x:443'], [':path', '/']], false)), stream(PROTOCOL_ERROR, 'malformed_headers')],
];

for (const [name, step, expected] of cases) {
  t.test(name, async (t) => {
    const server = await startOurServer(
      (s, headers) => {
        s.on('error', () => {});
        if (headers[':path'] !== '/hold') s.respond({ ':status': 200 }, { endStream: true });
      },
      { tls: true },
    );
    t.teardown(server.close);
    const raw = await rawClientOf(t, server.port);
    await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0, 'our SETTINGS');
    await step(raw);
    if (expected === 'accepted' || 'rst' in expected) {
      await pingRoundTrip(raw, 0x5eed);
      t.notOk(raw.frames.some((f) => f.type === FRAME.GOAWAY), `no GOAWAY (${describe(raw.frames)})`);
      t.same(server.observer.closed, [], 'the connection is up');
    }
    if (expected === 'accepted') {
      t.notOk(raw.frames.some((f) => f.type === FRAME.RST_STREAM), `no RST_STREAM (${describe(raw.frames)})`);
      t.same(server.observer.streamErrors, [], 'nothing counted');
      t.notOk(raw.frames.some((f) => f.type === FRAME.PING && f.payload.toString() === 'unasked!'), 'a PING ACK is not answered');
    } else if ('rst' in expected) {
      const rst = raw.frames.find((f) => f.type === FRAME.RST_STREAM);
      t.equal(rst && errorCodeOf(rst), expected.rst, `RST_STREAM with code ${expected.rst} (${describe(raw.frames)})`);
      t.same(server.observer.streamErrors, [{ reason: expected.reason, code: expected.rst }], `counted as ${expected.reason}`);
    } else {
      const goaway = await raw.waitFor((f) => f.type === FRAME.GOAWAY, 'GOAWAY');
      t.equal(errorCodeOf(goaway), expected.goaway, `GOAWAY with code ${expected.goaway} (${goaway.payload.subarray(8).toString()})`);
      await waitFor(() => server.observer.closed.length > 0, 'the close counted');
      t.same(server.observer.closed, [{ reason: expected.reason, code: expected.goaway }], `counted as ${expected.reason}`);
      await raw.closed; // §5.4.1: the connection is closed after the GOAWAY
    }
  });
}
