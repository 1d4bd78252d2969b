// A request whose body has all come (every byte of its Content-Length, its END_STREAM still on the
// way) is answered by an app that read it: the answer ends with END_STREAM and no RST_STREAM
// follows it, on both codecs. Before: the inbound took the request for an unfinished upload and
// reset it with NO_ERROR after the answer; on Node's codec that reset could overtake the
// answer's END_STREAM (nghttp2 sends control frames ahead of queued DATA), and the caller's
// sidecar cut a 200 it had whole (upstream_reset, 3-22 % of small POSTs through a node pair).
// Raw frames from a real TLS client; the app is a real node:http server.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { connectRawH2, describe, ERROR, errorCodeOf, FLAG, frame, FRAME, pingRoundTrip, requestHeaders } from '../helpers/raw-h2.js';

const POST: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost'], ['content-length', '5']];

// answers once the body's 5 bytes came: the Content-Length ends it for the app, not END_STREAM
const readThenAnswer = (req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${body}`));
};

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: an answer to a body that has all come is not followed by a reset`, async (t) => {
    const fx = await startInbound({ app: { protocol: 'http', handler: readThenAnswer }, codec });
    t.teardown(() => fx.close());
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
    t.teardown(() => raw.destroy());
    raw.write(requestHeaders(1, POST, false));
    raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('hello'))); // the whole Content-Length, END_STREAM held back
    const onStream1 = (f: { type: number; streamId: number }) => f.streamId === 1;
    const ends = (f: { type: number; flags: number }) => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0;
    await raw.waitFor((f) => onStream1(f) && (ends(f) || f.type === FRAME.RST_STREAM), 'the end of the answer (or a reset)');
    // the inbound has handled everything up to here: a reset of its own would have gone out before the ACK
    await pingRoundTrip(raw, 1);
    const frames = raw.frames.filter(onStream1);
    t.ok(frames.some(ends), `the answer ends with END_STREAM (${describe(frames)})`);
    t.notOk(frames.some((f) => f.type === FRAME.RST_STREAM), `no RST_STREAM on the stream (${describe(frames)})`);
    t.equal(Buffer.concat(frames.filter((f) => f.type === FRAME.DATA).map((f) => f.payload)).toString(), 'got hello', 'the whole answer came');
    // the request's END_STREAM closes the stream the ordinary way
    raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1));
    await waitFor(async () => fx.inbound.inFlight === 0 && fx.observer.requests.length === 1, 5000, 'the exchange to end and be recorded');
    t.equal(fx.observer.requests[0]?.status, 200);
    t.equal(fx.observer.requests[0]?.errorCode, undefined, 'recorded as answered, no error');
  });
}

t.test('codec node: a caller that never sends the END_STREAM after such an answer holds the stream only until the idle timeout', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: readThenAnswer }, codec: 'node', idleTimeoutMs: 300 });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(requestHeaders(1, POST, false));
  raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('hello')));
  const rst = await raw.waitFor((f) => f.streamId === 1 && f.type === FRAME.RST_STREAM, 'the idle timeout to reset the stream', 5000);
  const frames = raw.frames.filter((f) => f.streamId === 1);
  const ended = frames.findIndex((f) => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0);
  t.ok(ended !== -1 && ended < frames.indexOf(rst), `the answer ended before (${describe(frames)})`);
  await waitFor(async () => fx.inbound.inFlight === 0, 5000, 'the exchange to end');
  t.equal(fx.inbound.inFlight, 0, 'nothing left in flight');
});

t.test('codec node: content-length 0 held for its END_STREAM and answered 408 is still reset at once', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: readThenAnswer }, codec: 'node', idleTimeoutMs: 300 });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(requestHeaders(1, [...POST.slice(0, 4), ['content-length', '0']], false)); // no END_STREAM: held (empty-body-hold.ts)
  const rst = await raw.waitFor((f) => f.streamId === 1 && f.type === FRAME.RST_STREAM, 'RST_STREAM after the 408', 5000);
  t.equal(errorCodeOf(rst), ERROR.NO_ERROR, 'RST_STREAM(NO_ERROR): no upload wanted');
  await waitFor(async () => fx.observer.requests.length === 1, 5000, 'the request to be recorded');
  t.equal(fx.observer.requests[0]?.errorCode, 'request_timeout', 'recorded as the 408 it got');
});
