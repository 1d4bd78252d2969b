// Tunnels reset as early as they can be, many times over: the far app resets at the tunnel's
// first byte, and the calling app resets right after reading the 101. The
// resets reach the TLS connection between the sidecars (tunnel-reset.ts resets the TCP socket
// under the inbound's TLS socket), which Node 20 was seen to crash on (SIGSEGV) when done inside
// the handshake's callback: here the process must survive every round and leave nothing open.

import t from 'tap';
import { closedWithin, openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

const ROUNDS = 60;

t.test(`${ROUNDS} tunnels reset by the far app at the tunnel's first byte`, async (t) => {
  const pair = await startTunnelPair((socket) => {
    socket.write(SWITCHING);
    socket.once('data', () => socket.resetAndDestroy());
    socket.resume(); // the fixture hands the far app a paused socket
  });
  t.teardown(() => pair.close());
  let reset = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const tunnel = await openTunnel(pair.outbound.port);
    tunnel.socket.write('x');
    const seen = await closedWithin(tunnel, 5000);
    if (seen.join() === 'error:ECONNRESET,close') reset++;
    else t.comment(`round ${i}: ${seen.join()}`);
    tunnel.socket.destroy();
  }
  t.equal(reset, ROUNDS, 'every calling app saw the reset, and the process is still here');
  t.equal(pair.outbound.outbound.inFlight, 0, 'nothing left in flight on the outbound');
});

t.test(`${ROUNDS} tunnels reset by the calling app as soon as it has the 101`, async (t) => {
  const pair = await startTunnelPair((socket) => {
    socket.write(SWITCHING);
    socket.resume();
    socket.on('error', () => {});
  });
  t.teardown(() => pair.close());
  for (let i = 0; i < ROUNDS; i++) {
    const tunnel = await openTunnel(pair.outbound.port);
    tunnel.socket.resetAndDestroy();
  }
  const until = Date.now() + 5000;
  while (pair.outbound.outbound.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.equal(pair.outbound.outbound.inFlight, 0, 'every tunnel ended on the outbound');
});
