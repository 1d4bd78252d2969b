// A reloaded `timeout` reaches the dials of both codecs: the node codec's agent used to fix its
// connect and SETTINGS timeouts when it was made (at the pool's first dial), while the meshcar
// pool read them per dial. Here the agent is made under a 20 s timeout, the reload sets 300 ms,
// and a peer that never sends SETTINGS must then be closed within about that, not 20 s.

import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';
import { startModeGate } from '../helpers/mode-gate.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a reloaded timeout bounds the next dial's SETTINGS wait`, async (t) => {
    const pki = await makePki(TD);
    const silent = await startMisbehavingH2(pki, 'silent');
    // resets at first: the pool's first dial fails at once (the node codec's agent is made by it)
    const gate = await startModeGate(silent.port, 'reset');
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${gate.port}`], timeoutMs: 20_000 }], { codec, endpointBackoffMs: 1, pingIntervalMs: 60_000 });
    t.teardown(async () => {
      await fx.close();
      await gate.close();
      await silent.close();
    });
    t.equal((await request(fx.port, { path: '/echo' })).status, 503, 'the first dial failed');
    const reloaded: UpstreamConfig[] = [{ name: 'payments', endpoints: [parseEndpoint(`127.0.0.1:${gate.port}`) as Endpoint], identity: UPSTREAM_ID, timeoutMs: 300, routes: [] }];
    fx.outbound.setUpstreams(reloaded);
    gate.mode = 'relay';
    const res = await request(fx.port, { path: '/echo' });
    t.ok(res.status === 503 || res.status === 504, `the request to the silent peer ended (${res.status})`);
    t.ok(silent.connections >= 1, 'the silent peer was dialled');
    // 300 ms after the handshake, not 20 s
    await silent.waitForOpenAtMost(0, 3000);
    t.pass('the connection that never got SETTINGS was closed at the reloaded timeout');
  });
}
