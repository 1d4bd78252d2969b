// A TCP relay between a sidecar and a real upstream whose freeze() silently drops every byte,
// both ways, of the connections open at that moment (a NAT entry dropped, a paused host); later
// connections pass. For the outbound's keepalive and session probe tests.

import net from 'node:net';
import { once } from 'node:events';

/** A TCP relay; freeze() silently drops every byte, both ways, of the connections open now. */
export async function startFreezingRelay(target: number) {
  const live = new Set<{ frozen: boolean; a: net.Socket; b: net.Socket }>();
  let connections = 0;
  const server = net.createServer((a) => {
    connections++;
    const b = net.connect(target, '127.0.0.1');
    const c = { frozen: false, a, b };
    live.add(c);
    a.on('data', (d: Buffer) => void (c.frozen || b.write(d)));
    b.on('data', (d: Buffer) => void (c.frozen || a.write(d)));
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
    async stop() {
      for (const c of live) {
        c.a.destroy();
        c.b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
