// The node:http client toward an HTTP/1.1 app (Expect requests: app-http1-node.ts) drops a
// connection on which the app sent bytes while it was idle in the pool: an answer nobody asked
// for puts the connection out of step, and the next request goes on a new one, as the own client
// and undici already did. Before, node:http kept such a connection and reused it (a review: a
// whole second answer sent 200 ms after the first). A raw TCP app; an HTTP/2 caller over mTLS.

import t from 'tap';
import type net from 'node:net';
import { h2Request, inboundBeforeHttpApp } from '../helpers/inbound-fixture.js';
import { startRawApp } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/mesh.js';

t.test('bytes an app sends on an idle node:http connection: the connection is dropped, the next request gets a new one', async (t) => {
  const seen: string[] = [];
  const sockets = new Map<number, net.Socket>();
  let straySent = false;
  const app = await startRawApp(({ line, connection }, socket) => {
    seen.push(`${connection} ${line.split(' ')[1]}`);
    sockets.set(connection, socket);
    if (line.includes('/first')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst');
      // later, while the connection is idle: a whole answer meant for nobody (an app bug)
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY', () => (straySent = true)), 200);
    } else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond');
  });
  const { session } = await inboundBeforeHttpApp(t, app);

  // Expect: 100-continue sends a request through node:http
  const first = await h2Request(session, { ':method': 'GET', ':path': '/first', expect: '100-continue' });
  t.same([first.status, first.body.toString()], [200, 'first']);
  await waitFor(async () => straySent && sockets.get(1)?.readableEnded === true, 3000, 'the stray answer sent and the connection closed by the sidecar');
  const second = await h2Request(session, { ':method': 'GET', ':path': '/second', expect: '100-continue' });
  t.same([second.status, second.body.toString()], [200, 'second'], 'the next request gets its own answer');
  t.same(seen, ['1 /first', '2 /second'], 'on a new connection');
});
