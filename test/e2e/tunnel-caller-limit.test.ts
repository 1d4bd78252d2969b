// A WebSocket tunnel over the far sidecar's per-caller connection cap (inbound.limits.
// maxConnectionsPerCaller; each tunnel holds a connection of its own): the far sidecar closes
// the tunnel's connection unanswered, and the calling app's 502 says so and names the key. It
// said `reset the stream: socket hang up`, though no stream was reset and the cause was only in
// the far sidecar's log.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { openTunnel, startTunnelPair, switchingFarApp, UPGRADE_HEAD } from '../helpers/tunnel-pair.js';

t.test("a tunnel past the far sidecar's maxConnectionsPerCaller: a 502 that names the cap", async (t) => {
  const pair = await startTunnelPair(switchingFarApp().far, { inboundLimits: { maxConnectionsPerCaller: 2 } });
  t.teardown(() => pair.close());
  const open = [await openTunnel(pair.outbound.port), await openTunnel(pair.outbound.port)];
  t.teardown(() => open.forEach((tunnel) => tunnel.socket.destroy()));
  const third = net.connect({ port: pair.outbound.port, host: '127.0.0.1' });
  t.teardown(() => third.destroy());
  await once(third, 'connect');
  third.write(UPGRADE_HEAD);
  let answer = '';
  third.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  await once(third, 'close');
  t.match(answer, /^HTTP\/1\.1 502 /, 'the third tunnel is refused with 502');
  t.match(answer, /x-meshcar-error: upstream_reset/i);
  t.match(answer, /closed the tunnel's connection before answering the upgrade .*inbound\.limits\.maxConnectionsPerCaller/, 'the message names the cap, not a reset stream');
  t.notMatch(answer, /reset the stream/);
});
