// Test helper: a TCP gate on a loopback port the test holds for its whole run. Closed, it
// accepts and drops every connection (the service behind it is unreachable); open, it relays
// bytes to a target port (TLS passes through untouched). A config can name the gate's port
// before the service behind it exists, and the service can come and go on ports of its own
// (bound on port 0), so no port is ever released and bound again by someone else. Held, it
// accepts and keeps new connections waiting (a slow dial) until it is opened again.

import net from 'node:net';
import { once } from 'node:events';

export interface TcpGate {
  readonly port: number;
  /** Connections accepted so far (dropped or relayed). */
  readonly connections: number;
  /** Relay new connections to 127.0.0.1:`port`. */
  open(port: number): void;
  /** Drop new connections (those relayed already carry on unless `cut`). */
  close(options?: { cut?: boolean }): void;
  /** Keep new connections waiting, unrelayed, until open() relays them. */
  hold(): void;
  /** Resolves once `n` connections have been accepted. */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpGate(): Promise<TcpGate> {
  let target: number | undefined;
  let connections = 0;
  let holding = false;
  const held: net.Socket[] = [];
  const live = new Set<net.Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = net.createServer((client) => {
    connections += 1;
    for (const w of [...waiters]) {
      if (connections < w.n) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    if (holding) {
      client.on('error', () => {});
      client.once('close', () => live.delete(client));
      live.add(client);
      held.push(client);
      return;
    }
    relay(client);
  });
  const relay = (client: net.Socket) => {
    if (target === undefined || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      live.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        live.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get connections() {
      return connections;
    },
    open(to) {
      target = to;
      holding = false;
      for (const client of held.splice(0)) relay(client);
    },
    close(options = {}) {
      target = undefined;
      holding = false;
      if (options.cut) for (const s of live) s.destroy();
    },
    hold() {
      holding = true;
    },
    waitForConnections(n, timeoutMs = 10_000) {
      if (connections >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the gate saw ${connections} connections, not ${n}, within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async stop() {
      for (const s of live) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
