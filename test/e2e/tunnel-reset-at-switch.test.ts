// A far app that resets its connection in the same event-loop turn as it writes its 101: the
// reset reaches the inbound right behind the 101, and libuv reads a reset behind unread data
// as a plain end of stream. The calling app must still be reset, promptly, and nothing may stay
// in flight on the outbound. Before: the calling app got the 101 and then a FIN (the far app's
// clean end, to a tunnel that carries half-closes), and its connection stayed half-open on the
// outbound, in flight, until it closed it or the outbound's tunnelIdleTimeout. A far app's real
// FIN in that same turn must still arrive as a FIN, the calling app's side left open. Both
// HTTP/2 codecs (the tunnel rides a TLS connection of its own, but each sidecar is built
// around its codec).

import t from 'tap';
import net from 'node:net';
import { closedWithin, endings, openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

const ROUNDS = 10;

/**
 * The calling app's own view: its reset can come right behind the 101 as well, which a Node
 * client then also reads as an end. On an end, a zero-length write asks the kernel: on a reset
 * connection it fails (ECONNRESET or EPIPE) and the socket closes; on a half-closed one it
 * succeeds and the socket stays open.
 */
function askOnEnd(tunnel: { socket: net.Socket; events: string[] }): void {
  const ask = () => tunnel.socket.write(Buffer.alloc(0));
  if (tunnel.events.includes('end')) ask();
  else tunnel.socket.once('end', ask);
}

/** A reset, as the calling app saw it: at once, or as an end its connection did not outlive. */
function wasReset(seen: string[]): boolean {
  const text = seen.join();
  return text === 'error:ECONNRESET,close' || text === 'end,error:ECONNRESET,close' || text === 'end,error:EPIPE,close';
}

async function inFlightGone(outbound: { inFlight: number }, ms: number): Promise<number> {
  const until = Date.now() + ms;
  while (outbound.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  return outbound.inFlight;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: the far app resets in the same turn as its 101: the calling app is reset`, async (t) => {
    const pair = await startTunnelPair(
      (socket) => {
        socket.write(SWITCHING);
        socket.resetAndDestroy(); // same turn: the 101 leaves, the RST right behind it
      },
      { codec },
    );
    t.teardown(() => pair.close());
    let reset = 0;
    let released = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // the calling app neither writes nor closes: only the sidecars can end its connection
      const tunnel = await openTunnel(pair.outbound.port);
      askOnEnd(tunnel);
      const seen = await closedWithin(tunnel, 3000);
      // asked before the calling app lets go: it is the outbound that must have let go
      const inFlight = await inFlightGone(pair.outbound.outbound, 1000);
      tunnel.socket.destroy();
      if (wasReset(seen)) reset++;
      if (inFlight === 0) released++;
      if (!wasReset(seen) || inFlight > 0) {
        t.comment(`round ${i}: ${seen.join()}, ${inFlight} in flight`); // was: end,still open, 1 in flight
        break; // one miss says it; the rest would each wait 4 s
      }
    }
    t.equal(reset, ROUNDS, 'every calling app was reset within 3 s');
    t.equal(released, ROUNDS, 'and the outbound let go of each tunnel (nothing in flight) while the calling app still held it');
  });

  t.test(`${codec} codec: the far app ends in the same turn as its 101: the calling app gets a FIN and may still send`, async (t) => {
    let farSeen: { events: string[]; closed: Promise<void> } | undefined;
    let farGot = '';
    const pair = await startTunnelPair(
      (socket) => {
        farSeen = endings(socket);
        socket.on('data', (chunk: Buffer) => (farGot += chunk.toString('latin1')));
        socket.write(SWITCHING);
        socket.end(); // a half-close: the far app still reads
        socket.resume();
      },
      { codec },
    );
    t.teardown(() => pair.close());
    const tunnel = await openTunnel(pair.outbound.port);
    t.teardown(() => tunnel.socket.destroy());
    askOnEnd(tunnel);
    const until = Date.now() + 3000;
    while (!tunnel.events.includes('end') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    t.same(tunnel.events, ['end'], 'a FIN, and the connection is still good');
    tunnel.socket.end('last words');
    t.same(await closedWithin(tunnel, 3000), ['end', 'close'], 'closed once the calling app ended its side too');
    t.ok(farSeen, 'the far app had the tunnel');
    if (farSeen !== undefined) t.same(await closedWithin(farSeen, 3000), ['end', 'close'], "the far app got the calling app's end");
    t.equal(farGot, 'last words', 'and its bytes before it');
    t.equal(await inFlightGone(pair.outbound.outbound, 3000), 0, 'nothing left in flight on the outbound');
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: the calling app writes and resets in one turn: the far app gets the bytes, then a reset`, async (t) => {
    let far: { socket: net.Socket; events: string[]; closed: Promise<void> } | undefined;
    let farGot = '';
    const pair = await startTunnelPair(
      (socket) => {
        far = { socket, ...endings(socket) };
        socket.on('data', (chunk: Buffer) => (farGot += chunk.toString('latin1')));
        socket.write(SWITCHING);
        socket.resume();
      },
      { codec },
    );
    t.teardown(() => pair.close());
    const tunnel = await openTunnel(pair.outbound.port);
    tunnel.socket.write('a last message');
    tunnel.socket.resetAndDestroy(); // same turn: the bytes leave, the RST right behind them
    const until = Date.now() + 3000;
    while (far === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    if (far === undefined) return t.fail('the far app never had the tunnel');
    askOnEnd(far);
    const seen = await closedWithin(far, 3000);
    t.ok(wasReset(seen), `the far app was reset (${seen.join()}; was: end,still open)`);
    t.equal(farGot, 'a last message', 'after the bytes sent before the reset');
    t.equal(await inFlightGone(pair.outbound.outbound, 3000), 0, 'nothing left in flight on the outbound');
  });
}
