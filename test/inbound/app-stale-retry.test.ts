// A GET that meets a pooled HTTP/1.1 connection the app had closed is sent once more; that
// second try took the next idle connection, which had gone idle with the first and was as
// dead (an app closing idle connections after its own timeout closes them together): 502
// upstream_reset. The second try now opens a new connection. The app: raw TCP, answering the
// first request on each connection and resetting a connection when its second request arrives;
// two requests at once leave two idle connections in the pool.

import t from 'tap';
import net from 'node:net';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { listening } from '../helpers/raw-http.js';

t.test('the retry after a stale pooled connection goes on a new connection, not another stale one', async (t) => {
  const held: net.Socket[] = [];
  let connections = 0;
  const answer = (socket: net.Socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const server = net.createServer((socket) => {
    connections++;
    let requests = 0;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        if (++requests > 1) {
          socket.resetAndDestroy(); // this connection's time ran out: the app closes it
          return;
        }
        // the first two requests are answered together, so both connections stay in the pool
        if (connections <= 2 && held.push(socket) < 2) continue;
        for (const s of held.splice(0)) answer(s);
        if (connections > 2) answer(socket);
      }
    });
  });
  const fx = await startInbound({ externalApp: { protocol: 'http', port: await listening(t, server) } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());

  const both = await Promise.all([h2Request(caller, { ':path': '/a' }), h2Request(caller, { ':path': '/b' })]);
  t.same(both.map((a) => a.status), [200, 200], 'two requests at once: two pooled connections');
  t.equal(connections, 2);
  const next = await h2Request(caller, { ':path': '/c' });
  t.equal(next.status, 200, `the GET is answered (${next.status} ${next.body.toString()})`);
  t.equal(connections, 3, 'its second try opened a new connection');
});
