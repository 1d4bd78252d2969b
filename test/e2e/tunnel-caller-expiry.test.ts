// A WebSocket tunnel on an inbound connection whose caller certificate expires is cut as a
// drain that runs out cuts one: with resets on both its sides. The connection was destroyed
// plainly, so the far app got a FIN (read as the calling app's clean end of its stream, a
// transfer cut in its middle taken for whole) and the calling sidecar a half-close, which it
// carries through and on which it held the calling app's connection.

import t from 'tap';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { appIdentity, startOutbound } from '../helpers/outbound-fixture.js';
import { closedWithin, endings, openTunnel, SWITCHING } from '../helpers/tunnel-pair.js';
import { waitFor } from '../helpers/mesh.js';

/** The calling sidecar's certificate: long enough for the handshake and the 101, then expired. */
const CALLER_LIFETIME_MS = 2_500;

t.test("the caller's certificate expires under an open tunnel: both apps are reset, never sent a FIN", async (t) => {
  let far: { socket: net.Socket; events: string[]; closed: Promise<void> } | undefined;
  const app = net.createServer({ allowHalfOpen: true }, (socket) => {
    far = { socket, ...endings(socket) };
    socket.once('data', () => socket.write(SWITCHING));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const inbound = await startInbound({ externalApp: { protocol: 'http', port: (app.address() as AddressInfo).port } });
  const caller = await appIdentity(inbound.pki, CALLER_LIFETIME_MS);
  const outbound = await startOutbound(inbound.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${inbound.port}`], identity: SERVER_ID }], {}, caller);
  t.teardown(async () => {
    far?.socket.destroy();
    await outbound.close();
    await inbound.close();
    app.close();
  });
  const tunnel = await openTunnel(outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  await waitFor(async () => far !== undefined, 2000, 'the far app holds the tunnel');
  const farApp = far as NonNullable<typeof far>;
  farApp.socket.resume();
  const seenFar = await closedWithin(farApp, CALLER_LIFETIME_MS + 3000);
  t.same(seenFar, ['error:ECONNRESET', 'close'], 'the far app is reset (was: a FIN, the calling app\'s clean end)');
  t.same(await closedWithin(tunnel, 3000), ['error:ECONNRESET', 'close'], 'the calling app is reset');
  await waitFor(async () => outbound.outbound.inFlight === 0 && inbound.inbound.inFlight === 0, 3000, 'nothing left in flight');
});
