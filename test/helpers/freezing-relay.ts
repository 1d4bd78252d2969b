// A TCP relay between a sidecar and a real upstream whose freeze() silently drops every byte,
// both ways, of the connections open at that moment (a NAT entry dropped); later connections
// pass. stall(ms) holds those bytes instead and lets them through after ms (a paused host).
// slowDown(ms) holds every byte from the upstream that long from then on (a slow path: a PING's
// ACK comes a whole delay later). For the outbound's keepalive and session probe tests.

import net from 'node:net';
import { once } from 'node:events';

interface Relayed {
  frozen: boolean;
  /** Bytes held while stalled, with where they go. */
  held: Array<[net.Socket, Buffer]> | undefined;
  a: net.Socket;
  b: net.Socket;
}

/** A TCP relay; freeze() silently drops every byte, both ways, of the connections open now; slowDown() delays the upstream's. */
export async function startFreezingRelay(target: number) {
  const live = new Set<Relayed>();
  let connections = 0;
  let delayMs = 0;
  const server = net.createServer((a) => {
    connections++;
    const b = net.connect(target, '127.0.0.1');
    const c: Relayed = { frozen: false, held: undefined, a, b };
    live.add(c);
    a.on('data', (d: Buffer) => void (c.frozen || (c.held ? c.held.push([b, d]) : b.write(d))));
    // equal delays fire in the order they were set: the bytes keep theirs
    b.on('data', (d: Buffer) => void (c.frozen || (c.held ? c.held.push([a, d]) : delayMs === 0 ? a.write(d) : setTimeout(() => a.destroyed || a.write(d), delayMs))));
    for (const s of [a, b]) {
      s.on('error', () => {});
      s.on('close', () => {
        a.destroy();
        b.destroy();
        live.delete(c);
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    freeze() {
      for (const c of live) c.frozen = true;
    },
    /** Holds every byte, both ways, of the connections open now for `ms`, then lets them through in order (a peer paused, a path stalled). */
    stall(ms: number) {
      const stalled = [...live].filter((c) => !c.frozen);
      for (const c of stalled) c.held = [];
      setTimeout(() => {
        for (const c of stalled) {
          const held = c.held ?? [];
          c.held = undefined;
          for (const [to, d] of held) if (!to.destroyed) to.write(d);
        }
      }, ms);
    },
    slowDown(ms: number) {
      delayMs = ms;
    },
    async stop() {
      for (const c of live) {
        c.a.destroy();
        c.b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
