// A caller's HTTP/2 stream answered in full while its request body is still coming (an app that
// answers 413 at once, a gRPC-style answer with trailers before the upload ended): the inbound
// ends the stream with RST_STREAM(NO_ERROR) right after the answer's END_STREAM (RFC 9113
// §8.1), so the caller (another sidecar, whose upload may be stalled by backpressure) releases
// the stream at once instead of after the inbound's 60 s idle timeout. The answer itself,
// trailers included, arrives whole before the reset. Raw frames from a real TLS client.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { startInbound, type FixtureOptions } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { connectRawH2, describe, errorCodeOf, FLAG, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const POST = (path: string): Array<readonly [string, string]> => [[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'localhost'], ['content-length', '1000000']];

async function earlyAnswer(t: Tap.Test, app: FixtureOptions['app'], trailers: boolean): Promise<void> {
  const fx = await startInbound({ app });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  // the head and a first piece of a 1 MB body, the rest never sent (a stalled upload)
  raw.write(requestHeaders(1, POST('/early'), false));
  raw.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(1000, 97)));
  // well under the idle timeout (60 s): without the reset the stream stays open that long
  const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'RST_STREAM on stream 1', 5000);
  t.equal(errorCodeOf(rst), 0, 'RST_STREAM(NO_ERROR): stop sending, no error');
  const onStream = raw.frames.filter((f) => f.streamId === 1);
  const ended = onStream.findIndex((f) => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0);
  t.ok(ended !== -1 && ended < onStream.indexOf(rst), `after the answer's END_STREAM (${describe(onStream)})`);
  t.equal(Buffer.concat(onStream.filter((f) => f.type === FRAME.DATA).map((f) => f.payload)).toString(), 'early', 'the whole answer came');
  if (trailers) t.ok(onStream.filter((f) => f.type === FRAME.HEADERS).length === 2 && (onStream[ended]!.type === FRAME.HEADERS), 'the trailers came, ending the stream, before the reset');
  await waitFor(async () => fx.inbound.inFlight === 0, 2000, 'the exchange to end');
  t.equal(fx.inbound.inFlight, 0, 'the exchange is over');
  await waitFor(async () => fx.observer.requests.length === 1, 2000, 'the request to be recorded');
  t.equal(fx.observer.requests[0]?.errorCode, undefined, 'recorded as answered, not as a reset');
}

t.test('an HTTP/1.1 app answers 413 before the upload ends', async (t) => {
  await earlyAnswer(
    t,
    {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        req.on('error', () => {});
        res.writeHead(413, { 'content-length': '5' }).end('early');
      },
    },
    false,
  );
});

t.test('an HTTP/1.1 app answers 413 chunked before the upload ends', async (t) => {
  // no Content-Length: the answer's END_STREAM is a DATA frame of its own, after the body
  await earlyAnswer(
    t,
    {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        req.on('error', () => {});
        res.writeHead(413, { 'content-type': 'text/plain' });
        res.end('early');
      },
    },
    false,
  );
});

t.test('an h2c app answers with trailers before the upload ends', async (t) => {
  await earlyAnswer(
    t,
    {
      protocol: 'h2c',
      handler: (stream: ServerHttp2Stream) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-done': '1' }));
        stream.end('early');
      },
    },
    true,
  );
});
