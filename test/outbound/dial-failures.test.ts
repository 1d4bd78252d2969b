// One failed dial is one failure of its endpoint, however many requests waited on it (both
// codecs): the first connection to the endpoint is reset 150 ms after it was accepted while
// eight requests wait for that session; with outlier ejection at 3 consecutive failures the
// endpoint must not be ejected (each waiter used to count the same dial's failure again).

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

/** In front of `target`: the first connection is held 150 ms and then reset; later ones are relayed. */
async function firstConnectionFails(target: number) {
  let accepted = 0;
  const live = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted += 1;
    live.add(client);
    client.on('error', () => {});
    client.on('close', () => live.delete(client));
    if (accepted === 1) {
      const timer = setTimeout(() => client.resetAndDestroy(), 150);
      client.on('close', () => clearTimeout(timer));
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    live.add(upstream);
    upstream.on('error', () => {});
    upstream.on('close', () => {
      live.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    async stop() {
      for (const s of live) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: eight requests waiting on one failed dial count one failure, not eight`, async (t) => {
    const pki = await makePki(TD);
    const up = await startUpstream(pki);
    const gate = await firstConnectionFails(up.port);
    const fx = await startBalanced(pki, {
      ports: [gate.port],
      codec,
      outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 30_000, maxEjectionMs: 60_000, maxEjectionPercent: 100 },
      tuning: { endpointBackoffMs: 20 },
    });
    t.teardown(async () => {
      await fx.close();
      await gate.stop();
      await up.close();
    });
    const results = await Promise.all(Array.from({ length: 8 }, () => request(fx.port, { path: '/echo' })));
    t.ok(gate.accepted >= 1, `the endpoint was dialled (${gate.accepted} connections)`);
    t.equal(fx.observer.ejections, 0, 'the endpoint was not ejected for one failed dial');
    t.ok(results.every((r) => r.status === 200 || r.status === 503), `each request was answered (${results.map((r) => r.status).join(',')})`);
    // and it serves: not resting, not ejected
    const after = await request(fx.port, { path: '/echo' });
    t.equal(after.status, 200, 'the endpoint serves the next request');
  });
}
