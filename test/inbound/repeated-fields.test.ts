// Both HTTP/2 codecs hand the app the same request for the same frames, from a raw HTTP/2
// caller over mutual TLS: a repeated single-valued field (authorization, content-type,
// user-agent) keeps its first value, where the meshcar codec used to join them into "a, b", a
// value neither side sent; other repeats are joined; two Hosts and `:path: *` with anything
// but OPTIONS (RFC 9113 §8.3.1), a :method that is no token and a :path with whitespace are
// malformed, the stream reset.

import t from 'tap';
import { FRONTEND_ID, startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, ERROR, errorCodeOf, FLAG, FRAME, requestHeaders, type Frame } from '../helpers/raw-h2.js';

const head = (method: string, path: string): Array<[string, string]> => [
  [':method', method],
  [':scheme', 'https'],
  [':authority', 'orders'],
  [':path', path],
];
const on = (id: number, type: number) => (f: Frame) => f.type === type && f.streamId === id;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const fx = await startInbound({ codec });
    t.teardown(() => fx.close());
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
    t.teardown(() => raw.destroy());

    raw.write(
      requestHeaders(1, [
        ...head('GET', '/repeated'),
        ['authorization', 'Bearer first'],
        ['authorization', 'Bearer second'],
        ['content-type', 'text/plain'],
        ['content-type', 'application/json'],
        ['user-agent', 'one'],
        ['user-agent', 'two'],
        ['accept', 'text/html'],
        ['accept', 'application/json'],
      ]),
    );
    // the end: DATA or (empty trailers) HEADERS with END_STREAM
    await raw.waitFor((f) => f.streamId === 1 && (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0, 'the end of the answer');
    const echoed = JSON.parse(Buffer.concat(raw.frames.filter(on(1, FRAME.DATA)).map((f) => f.payload)).toString()) as { headers: Record<string, string> };
    t.equal(echoed.headers.authorization, 'Bearer first');
    t.equal(echoed.headers['content-type'], 'text/plain');
    t.equal(echoed.headers['user-agent'], 'one');
    t.equal(echoed.headers.accept, 'text/html, application/json');

    raw.write(requestHeaders(3, [...head('GET', '/two-hosts'), ['host', 'orders'], ['host', 'admin']]));
    const hosts = await raw.waitFor((f) => f.streamId === 3 && (f.type === FRAME.RST_STREAM || f.type === FRAME.HEADERS), 'an answer for two Hosts');
    t.equal(hosts.type, FRAME.RST_STREAM, 'two Hosts: reset');
    t.equal(errorCodeOf(hosts), ERROR.PROTOCOL_ERROR);
    raw.write(requestHeaders(5, head('GET', '*')));
    const rst = await raw.waitFor(on(5, FRAME.RST_STREAM), 'a reset for GET *');
    t.equal(errorCodeOf(rst), ERROR.PROTOCOL_ERROR, 'GET * is malformed');
    raw.write(requestHeaders(7, head('OPTIONS', '*')));
    await raw.waitFor(on(7, FRAME.HEADERS), 'an answer for OPTIONS *');
    t.notOk(raw.frames.some(on(7, FRAME.RST_STREAM)), 'OPTIONS * is served');
    // a method that is no token, a target with whitespace: malformed on both codecs
    raw.write(requestHeaders(9, head('GE T', '/x')));
    t.equal(errorCodeOf(await raw.waitFor(on(9, FRAME.RST_STREAM), 'a reset for :method "GE T"')), ERROR.PROTOCOL_ERROR, ':method "GE T" is malformed');
    raw.write(requestHeaders(11, head('GET', '/a b')));
    t.equal(errorCodeOf(await raw.waitFor(on(11, FRAME.RST_STREAM), 'a reset for :path "/a b"')), ERROR.PROTOCOL_ERROR, ':path with a space is malformed');
    raw.write(requestHeaders(13, head('GET', '/a\tb')));
    t.equal(errorCodeOf(await raw.waitFor(on(13, FRAME.RST_STREAM), 'a reset for a tab in :path')), ERROR.PROTOCOL_ERROR, ':path with a tab is malformed');
    // raw UTF-8 in :path ('à' is C3 A0; 0xA0 is no whitespace for HTTP): answered, not reset
    raw.write(requestHeaders(15, head('GET', '/caf\u00c3\u00a0')));
    await raw.waitFor(on(15, FRAME.HEADERS), 'an answer for a UTF-8 :path');
    t.notOk(raw.frames.some(on(15, FRAME.RST_STREAM)), 'a UTF-8 :path is not malformed');
  });
}
