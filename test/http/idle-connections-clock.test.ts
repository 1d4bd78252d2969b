// The idle sweep of the admin and CA servers (src/http/idle-connections.ts) timed connections
// on the wall clock. A clock stepped back an hour (NTP correcting a host that ran ahead) kept an
// idle connection, and every half-sent head, open for that hour; one stepped ahead closed a
// connection in use. It runs on the process's running time now (the CA's connection age bound
// too: test/ca/connection-limits.test.ts). A real HTTP server and raw sockets; this
// process's Date moved (test/helpers/movable-clock.ts).

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { closeIdleConnections } from '../../src/http/idle-connections.js';
import { movableClock, waitFor } from '../helpers/movable-clock.js';

async function serverWithSweep(t: Tap.Test, idleMs: number): Promise<number> {
  const server = http.createServer((_req, res) => res.end('ok'));
  closeIdleConnections(server, idleMs, 50);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

t.test('an idle connection is closed after idleMs of running time, with the clock stepped back', async (t) => {
  const port = await serverWithSweep(t, 300);
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const clock = movableClock();
  t.teardown(() => clock.restore());
  clock.offset.ms = -3_600_000;
  let closed = false;
  socket.once('close', () => (closed = true));
  t.ok(await waitFor(() => closed, 3_000), 'closed within 3 s (idleMs 300)');
});

t.test('a connection in use is kept, with the clock stepped ahead', async (t) => {
  const port = await serverWithSweep(t, 1_000);
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  let closed = false;
  socket.once('close', () => (closed = true));
  socket.resume();
  const clock = movableClock();
  t.teardown(() => clock.restore());
  // a request every 200 ms for 1.5 s of running time, the wall clock stepped 2 minutes ahead
  // between each request and the next (after the sweep saw the request's bytes)
  const start = performance.now();
  while (!closed && performance.now() - start < 1_500) {
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    clock.offset.ms += 120_000;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.notOk(closed, 'still open: it moved bytes every 200 ms (idleMs 1000)');
});
