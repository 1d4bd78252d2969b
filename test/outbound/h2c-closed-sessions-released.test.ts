// An app's h2c connection to the outbound, once closed, is let go at once, not held for the
// keep-alive time (src/outbound/h2c-idle.ts). Node 20's Http2Session.destroy() leaves the idle
// timer armed (its setTimeout(0) runs after the session is marked destroyed, and returns
// without clearing), so each closed session stayed reachable from its timer for 65 s: an app
// opening and closing h2c connections kept every one of the last 65 s (seen in a soak: one
// ServerHttp2Session more per round of traffic after forced GCs). A real listener, Node h2c
// clients closing their connections (GOAWAY, and a cut socket), a WeakRef on each session and
// forced GCs; the keep-alive time is 60 s, so no timer firing can explain the release.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { ServerHttp2Session } from 'node:http2';
import { AppListener } from '../../src/outbound/listener.js';
import { silent, sleep, waitUntil } from '../helpers/outbound-fixture.js';
import { collected } from '../helpers/collected.js';


t.test('a closed h2c session is collected well before the keep-alive time', async (t) => {
  const sessions: Array<WeakRef<ServerHttp2Session>> = [];
  const listener = new AppListener(
    {
      request: (_req, res) => res.end('http/1.1'),
      upgrade: (_req, socket) => socket.destroy(),
      stream: (stream, headers) => {
        sessions.push(new WeakRef(stream.session as ServerHttp2Session));
        stream.on('error', () => {});
        stream.respond({ ':status': 200 });
        // a download still going when the client cuts its socket
        if (headers[':path'] === '/slow') stream.write('part');
        else stream.end('ok');
      },
      brokenBody: () => false,
    },
    { maxHeaderBytes: 16384, keepAliveTimeoutMs: 60_000, maxAppStreams: 1024, headersTimeoutMs: 10_000 },
    silent,
  );
  const bound = await listener.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => listener.destroyAll());

  // one client closes with GOAWAY, the other cuts its socket
  for (const end of ['close', 'destroy'] as const) {
    const client = http2.connect(`http://127.0.0.1:${bound.port}`);
    client.on('error', () => {});
    const stream = client.request({ ':path': '/orders', ':authority': 'orders' });
    stream.resume();
    await once(stream, 'close');
    if (end === 'close') await new Promise<void>((resolve) => client.close(() => resolve()));
    else client.destroy();
  }
  // and one that cuts its socket while its stream is still open: Node's socketOnClose ends such
  // a session without destroy() (the leak review)
  const cutting = http2.connect(`http://127.0.0.1:${bound.port}`);
  cutting.on('error', () => {});
  const download = cutting.request({ ':path': '/slow', ':authority': 'orders' });
  download.on('error', () => {});
  await once(download, 'data');
  cutting.destroy();
  await waitUntil(() => listener.connections === 0, 'the connections closed');
  t.equal(sessions.length, 3, 'every session answered a stream');
  t.ok(await collected(sessions[0] as WeakRef<object>), 'the session its client closed with GOAWAY is let go');
  t.ok(await collected(sessions[1] as WeakRef<object>), 'the session whose socket was cut is let go');
  t.ok(await collected(sessions[2] as WeakRef<object>), 'the session whose socket was cut with a stream open is let go');
});
