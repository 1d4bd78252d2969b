// doctor's HTTP/2 PING probe toward a peer that sets up the connection and never answers the
// PING: the probe's bound ends it, and the failure says so ("no PING answer within ..."), not
// "HTTP2 ping cancelled", which is what destroying the session made of the PING first. A raw
// TCP peer that sends its SETTINGS and nothing more, and the real probe with a short bound.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { http2Ping, networkProblem } from '../../src/doctor/probe.js';
import { setProbeTimeout, PROBE_TIMEOUT_MS } from '../../src/doctor/probe-bound.js';

t.test('a PING never answered: the bound is named, not a cancelled PING', async (t) => {
  const sockets = new Set<net.Socket>();
  const peer = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    // an empty SETTINGS frame, then silence (no ACK of the client's, no PING answer)
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
  });
  peer.listen(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    peer.close();
  });
  setProbeTimeout(300);
  t.teardown(() => setProbeTimeout(PROBE_TIMEOUT_MS));
  const err = await http2Ping(`http://127.0.0.1:${(peer.address() as net.AddressInfo).port}`).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error, 'the probe fails');
  const said = networkProblem(err);
  t.match(said, /no PING answer/, `said: ${said}`);
  t.notMatch(said, /cancel/i, 'not a cancelled PING');
});
