// Test helper: a TCP gate in front of an upstream whose mode the test switches (tcp-gate.ts is
// the open/closed one): `relay` pipes each connection to the target, `reset` resets it on
// accept, `hold` keeps it unanswered (what it sends kept) until the test resets the held ones
// or relays them to the target. A dial through a held connection is one that is slow to
// connect, for as long as the test likes.

import net from 'node:net';
import { once } from 'node:events';

export type GateMode = 'relay' | 'reset' | 'hold';

export interface ModeGate {
  readonly port: number;
  mode: GateMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections held now. */
  readonly held: number;
  /** Resets every held connection. */
  resetHeld(): void;
  /** Relays every held connection to the target (what it sent meanwhile goes on). */
  releaseHeld(): void;
  close(): Promise<void>;
}

export async function startModeGate(target: number, mode: GateMode = 'relay'): Promise<ModeGate> {
  let accepted = 0;
  const live = new Set<net.Socket>();
  const held = new Set<net.Socket>();
  const relay = (client: net.Socket, early: Buffer[] = []) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const chunk of early) upstream.write(chunk);
    live.add(upstream);
    upstream.on('error', () => {});
    upstream.on('close', () => {
      live.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
    client.resume();
  };
  // read (so a peer giving up is seen: \`held\` goes down) and kept for a later relay
  const early = new Map<net.Socket, Buffer[]>();
  const keep = function (this: net.Socket, chunk: Buffer) {
    early.get(this)?.push(chunk);
  };
  const hold = (client: net.Socket) => {
    held.add(client);
    early.set(client, []);
    client.on('data', keep);
    client.on('close', () => early.delete(client));
    client.resume();
  };
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted += 1;
    live.add(client);
    client.on('error', () => {});
    client.on('close', () => {
      live.delete(client);
      held.delete(client);
    });
    if (gate.mode === 'reset') client.resetAndDestroy();
    else if (gate.mode === 'hold') hold(client);
    else relay(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const gate: ModeGate = {
    port: (server.address() as net.AddressInfo).port,
    mode,
    get accepted() {
      return accepted;
    },
    get held() {
      return held.size;
    },
    resetHeld() {
      for (const s of [...held]) s.resetAndDestroy();
      held.clear();
    },
    releaseHeld() {
      const list = [...held];
      held.clear();
      for (const s of list) {
        s.off('data', keep);
        s.pause();
        const chunks = early.get(s) ?? [];
        early.delete(s);
        relay(s, chunks);
      }
    },
    async close() {
      for (const s of live) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return gate;
}

/** Resolves once `check()` holds; rejects after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
