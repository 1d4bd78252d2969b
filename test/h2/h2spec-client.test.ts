// An h2spec-style sweep of RFC 9113 against our codec as the client (the outbound's upstream
// sessions), over mutual TLS with the test PKI: a raw server (fixtures/raw-h2-server.ts)
// answers our request on stream 1 with the frames of each case, and every later request with
// a plain 200. Only the points no other test covers (conformance-python: upper-case names, no
// :status, content-length, DATA before HEADERS, PUSH_PROMISE, even streams, floods, GOAWAY;
// settings-priority: HEAD/204/304 bodies, 1xx bounds; hostile-gaps: heads over our limit).
// Each case states the RFC's answer (our GOAWAY with its code, our RST_STREAM with its code, or
// the answer taken) and the reason the observer counts (the outbound's
// meshcar_http2_sessions_closed_total / stream_errors_total); after a stream error the session
// must still carry the next request.

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import type { IncomingHeaders } from '../../src/h2/headers.js';
import type { H2Connection } from '../../src/h2/connection.js';
import { FLAG, FRAME, describe, errorCodeOf, frame, headerBlock, type Frame } from '../helpers/raw-h2.js';
import { RecordingH2Observer, connectOurClient, readBody, waitFor } from './fixtures/h2-helpers.js';
import { startRawH2Server } from './fixtures/raw-h2-server.js';

const { PROTOCOL_ERROR, FRAME_SIZE_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, COMPRESSION_ERROR } = ErrorCode;
const PRIORITY = 0x2;
const CONTINUATION = 0x9;
const EH = FLAG.END_HEADERS;
const ES = FLAG.END_STREAM;
const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const settings = (id: number, value: number): Buffer => frame(FRAME.SETTINGS, 0, 0, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), u32(value)]));
const head = (id: number, fields: Array<[string, string]>, flags = EH | ES): Buffer => frame(FRAME.HEADERS, flags, id, headerBlock(fields));
const OK: Array<[string, string]> = [[':status', '200']];
const data = (id: number, text: string | Buffer, flags = 0): Buffer => frame(FRAME.DATA, flags, id, typeof text === 'string' ? Buffer.from(text) : text);

type Expected = { goaway: number; reason: string } | { rst: number; reason: string } | 'accepted';
const connection = (code: number, reason: string): Expected => ({ goaway: code, reason });
const stream = (code: number, reason: string): Expected => ({ rst: code, reason });
/** A malformed response (RFC 9113 §8.1.1): a stream error, PROTOCOL_ERROR. */
const malformed = stream(PROTOCOL_ERROR, 'malformed_headers');

const cases: Array<[string, Buffer[], Expected]> = [
  // §4.1, §5.5: unknown frame types and flags are ignored
  ['§5.5 an unknown frame type on the stream, every flag set', [frame(0x30, 0xff, 1, Buffer.from('zz')), head(1, OK)], 'accepted'],
  // §5.1 idle streams: only HEADERS (and PRIORITY) may name them
  ['§5.1 HEADERS on an idle stream of ours', [head(3, OK)], connection(PROTOCOL_ERROR, 'stream_id_error')],
  ['§5.1 DATA on an idle stream', [data(3, 'x')], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 RST_STREAM on an idle stream', [frame(FRAME.RST_STREAM, 0, 3, u32(ErrorCode.CANCEL))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 WINDOW_UPDATE on an idle stream', [frame(FRAME.WINDOW_UPDATE, 0, 3, u32(1))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 CONTINUATION on an idle stream', [frame(CONTINUATION, EH, 3, headerBlock(OK))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§5.1 PRIORITY on an idle stream', [frame(PRIORITY, 0, 3, Buffer.alloc(5)), head(1, OK)], 'accepted'],
  // §5.1 closed after the peer's END_STREAM: a connection error STREAM_CLOSED for HEADERS
  ['§5.1 HEADERS after the response ended', [head(1, OK), head(1, [['x-t', '1']])], connection(STREAM_CLOSED, 'stream_closed')],
  // §5.3.1 self-dependency
  ['§5.3.1 a response HEADERS depending on its own stream', [frame(FRAME.HEADERS, EH | ES | FLAG.PRIORITY, 1, Buffer.concat([u32(1), Buffer.from([15]), headerBlock(OK)]))], stream(PROTOCOL_ERROR, 'priority_self_dependency')],
  // §6.x frames on stream 0 or with the wrong length or padding
  ['§6.1 DATA on stream 0', [data(0, 'x')], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.1 DATA padding as long as the payload', [head(1, OK, EH), frame(FRAME.DATA, FLAG.PADDED | ES, 1, Buffer.from([3, 1, 2]))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.2 HEADERS on stream 0', [head(0, OK)], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.2 HEADERS padding past the priority fields', [frame(FRAME.HEADERS, EH | ES | FLAG.PADDED | FLAG.PRIORITY, 1, Buffer.concat([Buffer.from([1]), u32(0), Buffer.from([15])]))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.3 PRIORITY on stream 0', [frame(PRIORITY, 0, 0, Buffer.alloc(5))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.4 RST_STREAM on stream 0', [frame(FRAME.RST_STREAM, 0, 0, u32(ErrorCode.CANCEL))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5 SETTINGS ACK with a payload', [frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(6))], connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  ['§6.5.2 SETTINGS_ENABLE_PUSH 1 from a server', [settings(0x2, 1)], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5.2 SETTINGS_MAX_FRAME_SIZE below 2^14', [settings(0x5, 16_383)], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.5.2 SETTINGS_INITIAL_WINDOW_SIZE 2^31', [settings(0x4, 0x80000000)], connection(FLOW_CONTROL_ERROR, 'flow_control_error')],
  ['§6.7 PING on a stream', [frame(FRAME.PING, 0, 1, Buffer.alloc(8))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.8 GOAWAY on a stream', [frame(FRAME.GOAWAY, 0, 1, Buffer.alloc(8))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.9 WINDOW_UPDATE of 0 on the connection', [frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§6.9 WINDOW_UPDATE of 0 on the stream', [frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0))], stream(PROTOCOL_ERROR, 'window_update_zero')],
  ['§6.9.1 a stream window past 2^31 − 1', [frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0x7fffffff))], stream(FLOW_CONTROL_ERROR, 'flow_control_error')],
  // §6.10 header blocks
  ['§6.10 a response in three frames', (() => {
    const b = headerBlock([[':status', '200'], ['x-a', 'abcdef']]);
    return [frame(FRAME.HEADERS, ES, 1, b.subarray(0, 3)), frame(CONTINUATION, 0, 1, b.subarray(3, 6)), frame(CONTINUATION, EH, 1, b.subarray(6))];
  })(), 'accepted'],
  ['§6.10 a PING inside a header block', [frame(FRAME.HEADERS, ES, 1, headerBlock(OK)), frame(FRAME.PING, 0, 0, Buffer.alloc(8))], connection(PROTOCOL_ERROR, 'protocol_error')],
  ['§4.2 DATA over SETTINGS_MAX_FRAME_SIZE', [head(1, OK, EH), data(1, Buffer.alloc(16_385))], connection(FRAME_SIZE_ERROR, 'frame_size_error')],
  // RFC 7541 on the response
  ['RFC 7541 §6.1 index 0', [frame(FRAME.HEADERS, EH | ES, 1, Buffer.from([0x80]))], connection(COMPRESSION_ERROR, 'compression_error')],
  ['RFC 7541 §4.2 a table size update after a field', [frame(FRAME.HEADERS, EH | ES, 1, Buffer.concat([headerBlock(OK), Buffer.from([0x20])]))], connection(COMPRESSION_ERROR, 'compression_error')],
  // §8.1 responses: 1xx, trailers
  ['§8.1 a 1xx head, then the final one', [head(1, [[':status', '103'], ['link', '</a>']], EH), head(1, OK)], 'accepted'],
  ['§8.1 a 1xx head with END_STREAM', [head(1, [[':status', '103']])], malformed],
  ['§8.1 a second final head without END_STREAM', [head(1, OK, EH), head(1, OK, EH)], stream(PROTOCOL_ERROR, 'trailers_without_end_stream')],
  ['§8.1 trailers without END_STREAM', [head(1, OK, EH), head(1, [['x-t', '1']], EH)], stream(PROTOCOL_ERROR, 'trailers_without_end_stream')],
  ['§8.1 a pseudo-header in trailers', [head(1, OK, EH), head(1, OK)], malformed],
  ['§8.1.1 content-length above the body', [head(1, [[':status', '200'], ['content-length', '5']], EH), data(1, 'ab', ES)], stream(PROTOCOL_ERROR, 'content_length_mismatch')],
  ['§8.1.1 content-length that is not a number', [head(1, [[':status', '200'], ['content-length', '1a']], EH), data(1, 'ab', ES)], malformed],
  // §8.2, §8.3.2 response fields
  ['§8.3.2 :status 101', [head(1, [[':status', '101']])], malformed],
  ['§8.3.2 :status not three digits', [head(1, [[':status', '20']])], malformed],
  ['§8.3.2 two :status', [head(1, [[':status', '200'], [':status', '200']])], malformed],
  ['§8.3 a request pseudo-header in a response', [head(1, [[':status', '200'], [':path', '/']])], malformed],
  ['§8.3 a pseudo-header after a regular field', [head(1, [['x-a', '1'], [':status', '200']])], malformed],
  ['§8.2.2 connection in a response', [head(1, [[':status', '200'], ['connection', 'close']])], malformed],
  ['§8.2.2 transfer-encoding in a response', [head(1, [[':status', '200'], ['transfer-encoding', 'chunked']])], malformed],
  ['§8.2.1 CR in a value', [head(1, [[':status', '200'], ['x-a', 'a\rb']])], malformed],
  // §8.1 a complete answer, then RST_STREAM(NO_ERROR) to stop our upload: the answer stands
  ['§8.1 RST_STREAM(NO_ERROR) after a complete response', [head(1, OK, EH), data(1, 'done', ES), frame(FRAME.RST_STREAM, 0, 1, u32(ErrorCode.NO_ERROR))], 'accepted'],
];

interface Outcome {
  head?: IncomingHeaders;
  body?: string;
  err?: { reason: string; h2Code: number };
}

function get(conn: H2Connection): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'upstream', ':path': '/' }, { endStream: true });
    const out: Outcome = {};
    s.on('response', (h: IncomingHeaders) => (out.head = h));
    s.on('error', (err: { reason: string; h2Code: number }) => resolve({ ...out, err }));
    s.on('close', () => setImmediate(() => resolve(out)));
    readBody(s).then((b) => resolve({ ...out, body: b.toString() }), () => {});
  });
}

for (const [name, frames, expected] of cases) {
  t.test(name, async (t) => {
    const server = await startRawH2Server((f, side) => {
      if (f.type !== FRAME.HEADERS) return;
      if (f.streamId === 1) side.send(Buffer.concat(frames));
      else side.send(head(f.streamId, OK));
    });
    t.teardown(server.close);
    const observer = new RecordingH2Observer();
    const conn = await connectOurClient(server.port, { tls: true, observer });
    t.teardown(() => conn.destroy());
    const first = await get(conn);
    const sent = (await server.side()).frames;
    const ours = (type: number) => sent.filter((f: Frame) => f.type === type);
    if (expected === 'accepted') {
      t.equal(first.head?.[':status'], '200', `the answer is taken (${JSON.stringify(first)})`);
      t.equal(first.err, undefined, 'no error');
      t.same(observer.streamErrors, [], 'nothing counted');
    } else if ('rst' in expected) {
      t.match(first.err, { reason: expected.reason, h2Code: expected.rst }, `the stream fails with ${expected.reason}`);
      await waitFor(() => ours(FRAME.RST_STREAM).length > 0, 'our RST_STREAM');
      t.equal(errorCodeOf(ours(FRAME.RST_STREAM)[0]!), expected.rst, `RST_STREAM with code ${expected.rst}`);
      t.same(observer.streamErrors, [{ reason: expected.reason, code: expected.rst }], `counted once as ${expected.reason}`);
    }
    if (expected === 'accepted' || 'rst' in expected) {
      t.equal((await get(conn)).head?.[':status'], '200', 'the session carries the next request');
      t.same(ours(FRAME.GOAWAY), [], `no GOAWAY (${describe(sent)})`);
      t.same(observer.closed, [], 'the session is up');
      return;
    }
    // (unless it was answered whole before the frame that broke the rules)
    if (first.body === undefined) t.equal(first.err?.reason, 'connection_lost', 'the request fails with its session');
    await waitFor(() => ours(FRAME.GOAWAY).length > 0, 'our GOAWAY');
    const goaway = ours(FRAME.GOAWAY)[0]!;
    t.equal(errorCodeOf(goaway), expected.goaway, `GOAWAY with code ${expected.goaway} (${goaway.payload.subarray(8).toString()})`);
    await waitFor(() => observer.closed.length > 0, 'the close counted');
    t.same(observer.closed, [{ reason: expected.reason, code: expected.goaway }], `counted as ${expected.reason}`);
  });
}
