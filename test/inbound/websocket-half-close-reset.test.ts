// The mirror of test/outbound/websocket-half-close-reset: the far app half-closes a WebSocket
// tunnel (its FIN, relayed: the calling app reads on and keeps its side open) and then resets
// its connection (it crashed). The inbound's app socket kept the node:http agent's idle timer,
// so its one-second look at a half-closed side (watchHalfClosed) left it alone: both sidecars
// held the tunnel for as long as the calling app kept its side open, up to tunnelIdleTimeout
// (1 h), and the calling app was never told. Now the inbound stops that timer at the 101 (an
// upgraded socket has left the agent's pool) and the reset goes on as a reset.
// Real sidecar pair (tunnel-pair.ts), real TLS and certificates from the test CA.

import t from 'tap';
import net from 'node:net';
import { serverLetGoWithin, socketFdCount } from '../helpers/connections.js';
import { waitFor } from '../helpers/mesh.js';
import { closedWithin, openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

/** As the outbound's side promises: an app's connection gone, its tunnel's other connection closes within 5 s. */
const BOUND_MS = 5000;

t.test('the far app half-closes, then resets: the calling app is reset and both sidecars let go, well before tunnelIdleTimeout', async (t) => {
  let far: net.Socket | undefined;
  const pair = await startTunnelPair((socket) => {
    far = socket;
    socket.on('error', () => {});
    socket.write(SWITCHING);
    socket.resume();
  });
  t.teardown(() => pair.close());
  const baseline = await socketFdCount(process.pid);

  // the calling app reads and keeps its own side open after the far app's FIN, as the review's quietclient did
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  await waitFor(async () => far !== undefined, BOUND_MS, 'the far app to hold the tunnel');
  const farSocket = far as net.Socket;
  farSocket.end();
  await waitFor(async () => tunnel.events.includes('end'), BOUND_MS, "the far app's FIN to reach the calling app");
  farSocket.resetAndDestroy();
  const since = Date.now();

  await waitFor(async () => pair.inbound.inbound.inFlight === 0, BOUND_MS, 'the inbound to let go of the tunnel (was: in flight while the calling app kept its side open)');
  const callerReset = await serverLetGoWithin(pair.outbound.port, tunnel.socket.localPort as number, since, BOUND_MS);
  t.type(callerReset, 'number', `the calling app's connection is reset by the kernel within ${BOUND_MS} ms (was: held by the outbound)`);
  t.comment(`the calling app's connection reset ${String(callerReset)} ms after the far app's reset`);
  await waitFor(async () => pair.outbound.outbound.inFlight === 0, BOUND_MS, 'the outbound to let go of the tunnel');
  // the calling app's own socket is the one left: it reads no more after the FIN, so it holds
  // its fd until it next writes (was: +4, both sidecars' sockets of the tunnel)
  await waitFor(async () => (await socketFdCount(process.pid)) <= baseline + 1, BOUND_MS, 'the sidecars to close their sockets of the tunnel');

  // what the calling app reads is a reset, as TCP tells it at its next write
  for (let i = 0; i < 20 && !tunnel.socket.destroyed; i++) {
    tunnel.socket.write('more');
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seen = await closedWithin(tunnel, BOUND_MS);
  t.equal(seen[0], 'end', "the far app's FIN first");
  t.match(seen.slice(1), [/^error:(EPIPE|ECONNRESET)$/, 'close'], 'then a reset');
});
