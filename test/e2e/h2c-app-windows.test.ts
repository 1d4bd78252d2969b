// The HTTP/2 windows a pair grants h2c apps (src/http/app-h2c-windows.ts): 256 KiB per stream and
// 4 MiB per connection, where Node's defaults are 64 KiB for both. Node returns a connection's
// credit as bytes arrive, so its 64 KiB connection window capped what was in flight on the whole
// connection: bulk h2c transfers through a pair ran 80-105 MB/s, 100-160 with these windows.
// Read where an app sees them: an h2c app behind the inbound (the inbound's client sessions) and
// an app calling the outbound over h2c (its listener's sessions). Real sidecars, a real CA; then
// 2 MiB each way through the pair arrive whole (sha256).

import t from 'tap';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
const STREAM_WINDOW = 256 * 1024;
const CONNECTION_WINDOW = 4 * 1024 * 1024;
const BODY = Buffer.alloc(2 * 1024 * 1024);
for (let i = 0; i < BODY.length; i += 4) BODY.writeUInt32BE((i * 2654435761) >>> 0, i);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('h2c apps get 256 KiB stream windows and a 4 MiB connection window, both ways', async (t) => {
  // the app: GET answers BODY, POST answers the sha256 of what it read
  const appSessions: http2.ServerHttp2Session[] = [];
  const app = http2.createServer();
  app.on('session', (session) => appSessions.push(session));
  app.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':method'] === 'GET') {
      stream.respond({ ':status': 200, 'content-length': String(BODY.length) });
      stream.end(BODY);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => stream.respond({ ':status': 200, 'x-sha256': sha(Buffer.concat(chunks)) }, { endStream: true }));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => {
    for (const session of appSessions) session.destroy();
    app.close();
  });
  const back = await startSidecar(mesh.ca, { service: 'back', inbound: { app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` } });
  const front = await startSidecar(mesh.ca, { service: 'front', upstreams: [{ name: 'back', endpoints: [`127.0.0.1:${back.inboundPort}`], identity: 'spiffe://mesh.local/svc/back' }] });
  const client = http2.connect(`http://127.0.0.1:${front.outboundPort}`);
  client.on('error', () => {});
  t.teardown(async () => {
    client.destroy();
    await Promise.all([front.stop(), back.stop()]);
  });

  // the outbound's h2c listener, as its calling app sees it
  await once(client, 'remoteSettings');
  t.equal(client.remoteSettings.initialWindowSize, STREAM_WINDOW, "the outbound's SETTINGS_INITIAL_WINDOW_SIZE to a calling app");
  await waitFor(async () => (client.state.remoteWindowSize ?? 0) >= CONNECTION_WINDOW, 5000, "the outbound's connection window to a calling app");
  t.equal(client.state.remoteWindowSize, CONNECTION_WINDOW, "the outbound's connection window to a calling app (WINDOW_UPDATE on stream 0)");

  // 2 MiB down: the inbound's session to the app carries it
  const down = client.request({ ':method': 'GET', ':path': '/big', ':authority': 'back' });
  const parts: Buffer[] = [];
  down.on('data', (c: Buffer) => parts.push(c));
  const [head] = (await once(down, 'response')) as [http2.IncomingHttpHeaders];
  await once(down, 'end');
  t.equal(head[':status'], 200);
  t.equal(sha(Buffer.concat(parts)), sha(BODY), 'the download arrived whole');

  // the inbound's client session, as the h2c app sees it
  t.equal(appSessions.length, 1, 'one session from the inbound to the app');
  const appSession = appSessions[0] as http2.ServerHttp2Session;
  t.equal(appSession.remoteSettings.initialWindowSize, STREAM_WINDOW, "the inbound's SETTINGS_INITIAL_WINDOW_SIZE to the app");
  await waitFor(async () => (appSession.state.remoteWindowSize ?? 0) >= CONNECTION_WINDOW - STREAM_WINDOW, 5000, "the inbound's connection window to the app");
  t.ok((appSession.state.remoteWindowSize ?? 0) > 1024 * 1024, `the inbound's connection window to the app is ${appSession.state.remoteWindowSize} (Node's default 65535)`);

  // 2 MiB up, through the outbound's listener and the inbound's session
  const up = client.request({ ':method': 'POST', ':path': '/up', ':authority': 'back' });
  up.end(BODY);
  const [upHead] = (await once(up, 'response')) as [http2.IncomingHttpHeaders];
  up.resume();
  await once(up, 'end');
  t.equal(upHead[':status'], 200);
  t.equal(upHead['x-sha256'], sha(BODY), 'the upload arrived whole');
});
