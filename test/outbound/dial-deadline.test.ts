// One dial, one bound: `connectTimeout` covers the TCP connect, the TLS handshake and the peer's
// first SETTINGS together. The SETTINGS wait used to start a bound of its own after the
// handshake, so a peer finishing TLS just before the bound and then saying nothing held the
// dial nearly twice as long: past a `timeout` that left room for another endpoint. Here the
// peer's handshake is held back 700 ms of a 1 s bound (a relay delays what it sends), then it
// is silent: the dial must give up at about 1 s, not 1.7 s. Both codecs.

import t from 'tap';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { makePki, request, startOutbound, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

const CONNECT_MS = 1000;
const HANDSHAKE_DELAY_MS = 700;

/** Relays to 127.0.0.1:`target`, holding back what the target sends for `delayMs`; notes how long each connection lived. */
async function startDelayingRelay(target: number, delayMs: number): Promise<{ port: number; lifetimes: number[]; close(): Promise<void> }> {
  const lifetimes: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const accepted = performance.now();
    const up = net.connect(target, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(up);
    up.pause();
    const timer = setTimeout(() => up.pipe(client), delayMs);
    client.on('close', () => {
      clearTimeout(timer);
      lifetimes.push(performance.now() - accepted);
      up.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    lifetimes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a slow handshake and no SETTINGS end the dial at the connect timeout`, async (t) => {
    const pki = await makePki(TD);
    const silent = await startMisbehavingH2(pki, 'silent');
    const relay = await startDelayingRelay(silent.port, HANDSHAKE_DELAY_MS);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 10_000, connectTimeoutMs: CONNECT_MS }], { codec, pingIntervalMs: 60_000 });
    t.teardown(async () => {
      await fx.close();
      await relay.close();
      await silent.close();
    });
    // its retries dial again: only the first dial is watched, the rest end with the outbound
    const answered = request(fx.port, { path: '/echo' }).catch(() => undefined);
    await waitUntil(() => relay.lifetimes.length > 0, 'the first dial ended', 5000);
    t.ok(silent.connections >= 1, 'the handshake finished (the peer was reached)');
    const first = Math.round(relay.lifetimes[0] ?? Number.NaN);
    // about 1 s; a second bound for SETTINGS after the 700 ms handshake made it about 1.7 s
    t.ok(first >= CONNECT_MS - 100 && first < CONNECT_MS + 450, `the first dial lasted ${first} ms (bound ${CONNECT_MS} ms, handshake held ${HANDSHAKE_DELAY_MS} ms)`);
    await fx.close();
    await answered;
  });
}
