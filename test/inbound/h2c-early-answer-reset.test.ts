// An h2c app that answers an upload before reading its body and then resets the stream with
// NO_ERROR, as RFC 9113 §8.1 lets a server do once its response is complete: Node's core http2
// server does it by itself when a handler responds and ends without reading the request. The
// answer is relayed whole, counted as the app's status, and the stream's slot on the app's
// session is freed (an app allowing 3 streams at a time answers 8 such uploads in turn). A
// reset with NO_ERROR in the middle of the answer's body is a cut answer: still an error.
// Callers through a real outbound → inbound pair on both HTTP/2 codecs.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { postUpload, startPairToApp } from '../helpers/pair-to-app.js';
import { waitFor } from '../helpers/mesh.js';
import { FLAG, FRAME, frame, headerBlock, startRawH2cApp } from '../helpers/raw-h2.js';

/** More than the app's stream window (64 KiB): the upload is still going when the app answers. */
const UPLOAD = Buffer.alloc(2 * 1024 * 1024, 97);

const RST_NO_ERROR = (id: number) => frame(FRAME.RST_STREAM, 0, id, Buffer.alloc(4));
const HEAD_413 = (id: number) => frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '413'], ['content-length', '7'], ['x-app', 'early']]));

async function nodeApp() {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 3 } });
  server.on('session', (session) => session.on('error', () => {}));
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    // never reads the body: Node resets the stream with NO_ERROR after the answer
    stream.respond({ ':status': 413, 'content-length': '7', 'x-app': 'early' });
    stream.end('too big');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const WHOLE_APPS = {
  "Node's http2 server": nodeApp,
  'a raw app (HEADERS, DATA with END_STREAM, RST_STREAM(NO_ERROR) in one write)': () => startRawH2cApp((id) => [Buffer.concat([HEAD_413(id), frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('too big')), RST_NO_ERROR(id)])]),
};

for (const codec of ['meshcar', 'node'] as const) {
  for (const [name, start] of Object.entries(WHOLE_APPS)) {
    t.test(`codec ${codec}, ${name}: the whole early answer reaches the caller`, async (t) => {
      const app = await start();
      t.teardown(() => app.close());
      const { inbound: fx, outbound: out } = await startPairToApp(t, app.port, codec, 'h2c');
      for (let i = 1; i <= 8; i++) {
        const res = await postUpload(out.port, UPLOAD);
        t.same(res, { status: 413, header: 'early', body: 'too big' }, `upload ${i}: the app's answer`);
      }
      await waitFor(async () => fx.observer.requests.length >= 8, 10_000, 'the requests recorded').catch(() => undefined);
      t.same(fx.observer.requests.map((r) => [r.status, r.errorCode ?? null]), Array(8).fill([413, null]), "each counted as the app's 413");
    });
  }

  t.test(`codec ${codec}: a reset with NO_ERROR in the middle of the answer's body is still an error`, async (t) => {
    const app = await startRawH2cApp((id) => [Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200'], ['content-length', '100']])), frame(FRAME.DATA, 0, id, Buffer.from('0123456789')), RST_NO_ERROR(id)])]);
    t.teardown(() => app.close());
    const { inbound: fx, outbound: out } = await startPairToApp(t, app.port, codec, 'h2c');
    const outcome = await postUpload(out.port, UPLOAD).then(
      (res) => (res.status === 200 ? `a 200 of ${res.body.length} bytes, taken as whole` : `status ${res.status}`),
      (err: Error) => `broken off (${err.message})`,
    );
    t.not(outcome, 'a 200 of 10 bytes, taken as whole', `not taken for a whole answer (${outcome})`);
    await waitFor(async () => fx.observer.requests.length >= 1, 10_000, 'the request recorded').catch(() => undefined);
    t.ok(fx.observer.requests[0]?.errorCode !== undefined, `recorded as an error (${fx.observer.requests[0]?.errorCode})`);
  });
}
