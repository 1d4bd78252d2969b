// An h2c app on Node's http2 server that answers a GET without reading its request and without a
// Content-Length (respond(), write(), end(): the ordinary handler) resets the stream with
// RST_STREAM(NO_ERROR) once its answer is handed over (src/http/early-end.ts). With the stream
// window the inbound grants it at Node's 64 KiB the answer's END_STREAM leaves first. f2cc129d
// (reverted) granted 256 KiB: the reset then overtook the answer's end on 35-56 of 100 downloads of
// 256 KiB, and on 96-100 of 100 with its 4 MiB connection window too, each cut toward the caller
// (upstream_reset). Real sidecars, a real CA, a caller that reads at once.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
const SIZE = 256 * 1024;
const DOWNLOADS = 100;
const CHUNK = Buffer.alloc(64 * 1024, 7);

t.test('an h2c app that never reads the request and sends no length: its answers arrive whole', async (t) => {
  const appSessions: http2.ServerHttp2Session[] = [];
  const app = http2.createServer();
  app.on('session', (session) => appSessions.push(session));
  app.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    let left = SIZE / CHUNK.length;
    const pump = (): void => {
      while (left-- > 0) {
        if (!stream.write(CHUNK)) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.end();
    };
    pump();
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => {
    for (const session of appSessions) session.destroy();
    app.close();
  });
  const back = await startSidecar(mesh.ca, { service: 'back', inbound: { app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` } });
  t.teardown(() => back.stop());
  const front = await startSidecar(mesh.ca, { service: 'front', upstreams: [{ name: 'back', endpoints: [`127.0.0.1:${back.inboundPort}`], identity: 'spiffe://mesh.local/svc/back' }] });
  t.teardown(() => front.stop());
  // the caller takes what comes at once: its own windows are wide, so no backpressure of its making
  const client = http2.connect(`http://127.0.0.1:${front.outboundPort}`, { settings: { initialWindowSize: 1 << 20 } });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  await once(client, 'remoteSettings');
  client.setLocalWindowSize(8 << 20);
  const missing: number[] = [];
  for (let i = 0; i < DOWNLOADS; i++) {
    const got = await new Promise<number>((resolve) => {
      let bytes = 0;
      const req = client.request({ ':method': 'GET', ':path': `/d${i}`, ':authority': 'back' });
      // a download that stalls is a cut one, counted, not a hang until tap's file timeout
      const stalled = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 20_000);
      const done = (): void => {
        clearTimeout(stalled);
        resolve(bytes);
      };
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('error', done);
      req.on('close', done);
    });
    if (got !== SIZE) missing.push(SIZE - got);
  }
  // Node's race is its own and may still strike under backpressure (the README's advice: give
  // large answers a Content-Length), so a cut or two on a loaded host is not this fault, which
  // cut most of them
  t.ok(missing.length <= 2, `${DOWNLOADS - missing.length} of ${DOWNLOADS} downloads whole (bytes missing from the cut ones: ${missing.join(', ') || 'none'})`);
});
