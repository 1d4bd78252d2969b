// WebSocket tunnels through a real sidecar pair: an abort on one hop reaches the far app as an
// abort (a TCP reset), never as a FIN. A tunnel carries half-closes through, so a FIN reads as
// the peer's clean end of its stream: a transfer cut in its middle would be taken for whole,
// and a peer that half-closes keeps its own side open. Also either sidecar's tunnelIdleTimeout:
// both apps' connections are reset (before: the calling app got a FIN and its connection stayed
// open on the outbound until the outbound's own, longer, tunnelIdleTimeout), also once one app
// has half-closed; a 101 that is no switch; a drain that runs out.

import t from 'tap';
import net from 'node:net';
import { closedWithin, endings, openTunnel, startTunnelPair, switchingFarApp, SWITCHING, UPGRADE_HEAD } from '../helpers/tunnel-pair.js';
import { waitFor } from '../helpers/mesh.js';

t.test('the far app resets its connection mid-tunnel: the calling app is reset', async (t) => {
  let far: net.Socket | undefined;
  const pair = await startTunnelPair((socket) => {
    far = socket;
    socket.write(SWITCHING);
    socket.resume();
  });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  t.ok(far, 'the far app holds the tunnel');
  far?.resetAndDestroy();
  const seen = await closedWithin(tunnel, 5000);
  t.same(seen, ['error:ECONNRESET', 'close'], 'a reset, not a FIN (was: end, then still open)');
});

t.test('the calling app resets its connection mid-tunnel: the far app is reset', async (t) => {
  const farApp = switchingFarApp();
  const pair = await startTunnelPair(farApp.far);
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  tunnel.socket.resetAndDestroy();
  const seen = await closedWithin(farApp.seen(), 5000);
  t.same(seen, ['error:ECONNRESET', 'close'], 'a reset, not a FIN (was: end, then still open)');
});

t.test("the inbound's tunnelIdleTimeout closes both apps' connections", async (t) => {
  const farApp = switchingFarApp();
  const pair = await startTunnelPair(farApp.far, { inboundTunnelIdleTimeoutMs: 300 });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  const seen = await closedWithin(tunnel, 5000);
  t.same(seen, ['error:ECONNRESET', 'close'], 'the calling app is reset (was: a FIN, its connection left open on the outbound)');
  t.equal((await closedWithin(farApp.seen(), 5000)).at(-1), 'close', 'the far app is closed');
  t.equal(pair.outbound.outbound.inFlight, 0, 'nothing left in flight on the outbound');
});

t.test("the outbound's tunnelIdleTimeout resets both apps' connections, as the inbound's does", async (t) => {
  // the calling app's connection was closed with a FIN, the far app's clean end of its stream
  // to it, while the inbound's own idle timeout (and either drain) resets it: which of the two
  // timers ran out first decided what the calling app read
  const farApp = switchingFarApp();
  const pair = await startTunnelPair(farApp.far, { outboundTunnelIdleTimeoutMs: 300 });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  t.same(await closedWithin(tunnel, 5000), ['error:ECONNRESET', 'close'], 'the calling app is reset (was: a FIN)');
  t.same(await closedWithin(farApp.seen(), 5000), ['error:ECONNRESET', 'close'], 'the far app is reset');
  t.equal(pair.outbound.outbound.inFlight, 0, 'nothing left in flight on the outbound');
});

/** Writes until the socket fails (a reset answered to a write); what it then saw. */
async function writeUntilRefused(tunnel: { socket: net.Socket; events: string[]; closed: Promise<void> }): Promise<string[]> {
  for (let i = 0; i < 20 && !tunnel.socket.destroyed; i++) {
    tunnel.socket.write('more');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return closedWithin(tunnel, 2000);
}

t.test("the far app ends its side, then the inbound's tunnelIdleTimeout runs out: the outbound lets the calling app go at once", async (t) => {
  // the outbound had relayed the far app's FIN and read no more from the inbound's connection,
  // so the inbound's reset at its idle timeout went unseen: the calling app's connection stayed
  // half-open and in flight on the outbound (its drain waiting) until the outbound's own
  // tunnelIdleTimeout. (A reset after a FIN reaches a Node or libuv reader at its next write.)
  const pair = await startTunnelPair((socket) => {
    socket.on('error', () => {});
    socket.end(SWITCHING);
  }, { inboundTunnelIdleTimeoutMs: 300 });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  await waitFor(async () => pair.outbound.outbound.inFlight === 0, 4000, 'the outbound to let go of the tunnel (was: in flight until its own tunnelIdleTimeout)');
  const seen = await writeUntilRefused(tunnel);
  t.equal(seen[0], 'end', "the far app's FIN first");
  t.match(seen.slice(1), [/^error:(EPIPE|ECONNRESET)$/, 'close'], 'then a write is refused with a reset');
});

t.test("the calling app ends its side, then the outbound's tunnelIdleTimeout runs out: the inbound lets the far app go at once", async (t) => {
  // the mirror: the inbound had relayed the calling app's FIN and read no more from the
  // outbound's connection, so the outbound's reset went unseen and the far app's connection
  // stayed half-open and in flight on the inbound until the inbound's own tunnelIdleTimeout
  let far: { socket: net.Socket; events: string[]; closed: Promise<void> } | undefined;
  const pair = await startTunnelPair((socket) => {
    far = { socket, ...endings(socket) };
    socket.write(SWITCHING);
    socket.resume();
  // longer than the sidecars' one-second look at a half-closed side: that look writes nothing,
  // yet a write of nothing re-armed the idle timer of the socket it went to (the app's, here)
  }, { outboundTunnelIdleTimeoutMs: 1500 });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  tunnel.socket.end();
  await waitFor(async () => pair.inbound.inbound.inFlight === 0, 6000, 'the inbound to let go of the tunnel (was: in flight until its own tunnelIdleTimeout)');
  const seen = await writeUntilRefused(far as NonNullable<typeof far>);
  t.equal(seen[0], 'end', "the calling app's FIN first");
  t.match(seen.slice(1), [/^error:(EPIPE|ECONNRESET)$/, 'close'], 'then a write is refused with a reset');
});

for (const [what, answer, said] of [
  ['without an Upgrade field', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nRAW', 'without an Upgrade field'],
  // said "without an Upgrade field" too, which sent whoever read it looking at the wrong field
  ['with Upgrade but without `upgrade` in Connection', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nRAW', 'without `upgrade` in its Connection field'],
] as const) {
  t.test(`the far app answers 101 ${what}: the calling app gets 502 bad_gateway, the message names what the 101 lacked`, async (t) => {
    // review of tunnels M3: the inbound relayed it as a plain answer, so the calling app read
    // "101 Switching Protocols" on a connection that then closed, and both records said 101
    const pair = await startTunnelPair((socket) => {
      socket.resume();
      socket.write(answer);
    });
    t.teardown(() => pair.close());
    const caller = net.connect({ port: pair.outbound.port, host: '127.0.0.1' });
    t.teardown(() => caller.destroy());
    caller.on('error', () => {});
    let text = '';
    caller.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    caller.write(UPGRADE_HEAD);
    const seen = await closedWithin({ events: [], closed: new Promise<void>((resolve) => caller.once('close', () => resolve())) }, 5000);
    t.same(seen, ['close'], 'answered, then closed');
    t.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    t.match(text, /\r\nx-meshcar-error: bad_gateway\r\n/);
    t.match(text, `the app answered 101 Switching Protocols ${said}`);
    t.notMatch(text, /RAW/, 'nothing of what followed');
    const record = (await pair.inbound.observer.waitForRequests(1)).at(-1);
    t.match(record, { status: 502, errorCode: 'bad_gateway' });
  });
}

for (const side of ['outbound', 'inbound'] as const) {
  t.test(`a drain of the ${side} that runs out cuts a tunnel with resets on both sides`, async (t) => {
    // before: each app got a FIN, read as the other's clean end; after the inbound's, the
    // outbound kept the calling app's connection half-open and in flight
    const farApp = switchingFarApp();
    const pair = await startTunnelPair(farApp.far);
    t.teardown(() => pair.close());
    const tunnel = await openTunnel(pair.outbound.port);
    t.teardown(() => tunnel.socket.destroy());
    if (side === 'outbound') await pair.outbound.outbound.drain(200);
    else await pair.inbound.inbound.drain(200);
    t.same(await closedWithin(tunnel, 5000), ['error:ECONNRESET', 'close'], 'the calling app is reset');
    t.equal((await closedWithin(farApp.seen(), 5000)).at(-1), 'close', 'the far app is closed');
    t.notOk(farApp.seen().events.includes('end'), 'with no FIN first');
    t.equal(pair.outbound.outbound.inFlight, 0, 'nothing left in flight on the outbound');
  });
}
