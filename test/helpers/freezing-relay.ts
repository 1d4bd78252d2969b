// A TCP relay between a sidecar and a real upstream whose freeze() silently drops every byte,
// both ways, of the connections open at that moment (a NAT entry dropped, a paused host); later
// connections pass. slowDown(ms) holds every byte from the upstream that long from then on (a
// slow path: a PING's ACK comes a whole delay later). For the outbound's keepalive and session
// probe tests.

import net from 'node:net';
import { once } from 'node:events';

/** A TCP relay; freeze() silently drops every byte, both ways, of the connections open now; slowDown() delays the upstream's. */
export async function startFreezingRelay(target: number) {
  const live = new Set<{ frozen: boolean; a: net.Socket; b: net.Socket }>();
  let connections = 0;
  let delayMs = 0;
  const server = net.createServer((a) => {
    connections++;
    const b = net.connect(target, '127.0.0.1');
    const c = { frozen: false, a, b };
    live.add(c);
    a.on('data', (d: Buffer) => void (c.frozen || b.write(d)));
    // equal delays fire in the order they were set: the bytes keep theirs
    b.on('data', (d: Buffer) => void (c.frozen || (delayMs === 0 ? a.write(d) : setTimeout(() => a.destroyed || a.write(d), delayMs))));
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
