// The calling app half-closes a WebSocket tunnel (its FIN, relayed: the far app reads on) and
// then resets its connection (it crashed). Node reads no more from a socket after its end, and
// the outbound left its app socket unasked because that socket carried the tunnelIdleTimeout
// timer, which an empty write re-arms: both sidecars held the tunnel (the outbound's app fd with
// no TCP entry, its upstream connection in FIN-WAIT-2, the inbound's two connections) and the
// far app was never told, until tunnelIdleTimeout (1 h). Now the half-closed app socket is asked
// every second, as the connection between the sidecars is, and a reset goes on as a reset.
// Real sidecar pair (tunnel-pair.ts), real TLS and certificates from the test CA.

import t from 'tap';
import net from 'node:net';
import { socketFdCount, serverLetGoWithin } from '../helpers/connections.js';
import { waitFor } from '../helpers/mesh.js';
import { closedWithin, endings, openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

/** What the README promises: once the app's connection is gone, its tunnel's upstream connection closes within 5 s. */
const BOUND_MS = 5000;

t.test('the calling app half-closes, then resets: the far app is reset and both sidecars let go, well before tunnelIdleTimeout', async (t) => {
  // the far app echoes and keeps its side open after the FIN, as app-noclose did in the review
  let far: { socket: net.Socket; events: string[]; closed: Promise<void> } | undefined;
  const pair = await startTunnelPair((socket) => {
    far = { socket, ...endings(socket) };
    socket.write(SWITCHING);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.resume();
  });
  t.teardown(() => pair.close());
  const baseline = await socketFdCount(process.pid);

  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  let echoed = '';
  tunnel.socket.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));
  tunnel.socket.write('ping');
  await waitFor(async () => echoed === 'ping', BOUND_MS, 'the echo through the tunnel');
  const farSide = far as NonNullable<typeof far>;
  const farPort = farSide.socket.localPort as number;
  const inboundPort = farSide.socket.remotePort as number; // the inbound's end of the far app's connection

  tunnel.socket.end();
  await waitFor(async () => farSide.events.includes('end'), BOUND_MS, "the calling app's FIN to reach the far app");
  tunnel.socket.resetAndDestroy();
  const since = Date.now();

  await waitFor(async () => pair.outbound.outbound.inFlight === 0, BOUND_MS, 'the outbound to let go of the tunnel (was: in flight until its tunnelIdleTimeout, 1 h)');
  const farReset = await serverLetGoWithin(farPort, inboundPort, since, BOUND_MS);
  t.type(farReset, 'number', `the far app's connection is reset by the kernel within ${BOUND_MS} ms (was: left in CLOSE_WAIT)`);
  t.comment(`the far app's connection reset ${String(farReset)} ms after the calling app's reset`);
  await waitFor(async () => pair.inbound.inbound.inFlight === 0, BOUND_MS, 'the inbound to let go of the tunnel');
  // the far app's own socket is the one left: it reads no more after the FIN, so it holds its
  // fd until it next writes (was: +5, the outbound's app and upstream sockets, the inbound's two)
  await waitFor(async () => (await socketFdCount(process.pid)) <= baseline + 1, BOUND_MS, 'the sidecars to close their sockets of the tunnel');

  // and what the far app reads is a reset, as TCP tells it at its next write: never a FIN taken for a clean end
  for (let i = 0; i < 20 && !farSide.socket.destroyed; i++) {
    farSide.socket.write('more');
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seen = await closedWithin(farSide, BOUND_MS);
  t.equal(seen[0], 'end', "the calling app's FIN first");
  t.match(seen.slice(1), [/^error:(EPIPE|ECONNRESET)$/, 'close'], 'then a reset');
});
