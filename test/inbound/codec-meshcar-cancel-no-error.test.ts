// http2.codec meshcar, server role: a caller that sends a whole request (HEADERS with
// END_STREAM) and then RST_STREAM with NO_ERROR has cancelled it. RFC 9113 §8.1 keeps a body
// readable after RST_STREAM(NO_ERROR) only for a client told so by its server; a server that
// kept the stream held the request, its app call and a concurrency slot for ever, and its late
// answer (the app's, or the sidecar's own 502/504) threw out of the process.
// Raw frames from a real TLS client; the app is a real HTTP/1.1 or h2c server.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const GET: Array<readonly [string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':path', '/slow'], [':authority', 'localhost']];

function rstNoError(streamId: number): Buffer {
  return frame(FRAME.RST_STREAM, 0, streamId, Buffer.alloc(4)); // code 0: NO_ERROR
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('GET then RST_STREAM(NO_ERROR): the app call is cancelled, the slot and the books are freed', async (t) => {
  const held: ServerResponse[] = [];
  let cancelled = 0;
  const fx = await startInbound({
    codec: 'meshcar',
    limits: { maxConcurrentStreams: 4 },
    app: {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        held.push(res); // never answered: only a cancel ends it
        res.once('close', () => {
          if (!res.writableEnded) cancelled++;
        });
        void req;
      },
    },
  });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());

  // twice the concurrency limit, one after the other: each cancel must free its slot
  const n = 8;
  for (let i = 0; i < n; i++) {
    const id = 1 + 2 * i;
    raw.write(requestHeaders(id, GET));
    await until(`the app to see request ${i + 1}`, () => held.length === i + 1);
    raw.write(rstNoError(id));
    await until(`the app call of request ${i + 1} to be cancelled`, () => cancelled === i + 1);
  }
  await until('every cancelled request to be recorded', () => fx.observer.requests.length === n);
  t.equal(fx.inbound.inFlight, 0, 'nothing stays in flight');
  t.same(fx.observer.requests.map((r) => r.status), Array(n).fill(499), 'each recorded as the caller leaving (499)');
  t.notOk(raw.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId === 1 + 2 * n), 'no stream refused');
});

t.test('GET then RST_STREAM(NO_ERROR) against an h2c app answering late: the answer is dropped, the sidecar lives', async (t) => {
  const streams: ServerHttp2Stream[] = [];
  const fx = await startInbound({ codec: 'meshcar', app: { protocol: 'h2c', handler: (stream: ServerHttp2Stream) => void streams.push(stream) } });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());

  raw.write(requestHeaders(1, GET));
  await until('the app to see the request', () => streams.length === 1);
  raw.write(rstNoError(1));
  await until('the request to be recorded', () => fx.observer.requests.length === 1);
  const appStream = streams[0]!;
  // without the fix the app's stream stayed open and this answer threw in the sidecar
  if (!appStream.destroyed && !appStream.closed) {
    appStream.respond({ ':status': 200 });
    appStream.end('late answer');
  }
  // the connection still serves: a second request is answered
  raw.write(requestHeaders(3, GET));
  await until('the app to see the second request', () => streams.length === 2);
  streams[1]!.respond({ ':status': 200 });
  streams[1]!.end('ok');
  const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 3, 'the answer on stream 3');
  t.ok(head, 'the second request is answered on the same connection');
  t.equal(fx.observer.requests[0]!.status, 499);
});

t.test('GET then RST_STREAM(NO_ERROR) with the app down: the 502 meets a cancelled stream, the sidecar lives', async (t) => {
  const fx = await startInbound({ codec: 'meshcar', appDown: true });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  // both in one write: the RST is read before the app's refusal comes back
  raw.write(Buffer.concat([requestHeaders(1, GET), rstNoError(1)]));
  await until('the request to be recorded', () => fx.observer.requests.length === 1);
  raw.write(requestHeaders(3, GET));
  const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 3, 'the 502 on stream 3');
  t.ok(head, 'the next request is still answered (502)');
  t.equal(fx.inbound.inFlight, 0);
});
