// An endpoint a reload removes while a session to it is still being dialled: the request that
// started the dial is served on it, and that session then closes (GOAWAY once its stream is
// done), as the removed endpoint's open sessions do. The removal winds down the sessions open
// at that moment only; one adopted after it was kept, pinged, to its maximum age (10 min), a
// connection to an endpoint no request would ever pick again. Both codecs.

import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { startTcpGate } from '../helpers/tcp-gate.js';

const upstream = (ports: readonly number[]): UpstreamConfig[] => [
  { name: 'payments', endpoints: ports.map((p) => parseEndpoint(`127.0.0.1:${p}`) as Endpoint), identity: UPSTREAM_ID, timeoutMs: 5000, routes: [] },
];

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a session dialled to an endpoint removed meanwhile serves its request, then closes`, async (t) => {
    const pki = await makePki(TD);
    const [a, b] = await Promise.all([startUpstream(pki), startUpstream(pki)]);
    // a is reached through a gate that holds the dial (TCP accepted, no TLS yet)
    const gate = await startTcpGate();
    gate.hold();
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${gate.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await gate.stop();
      await Promise.all([a.close(), b.close()]);
    });
    const first = request(fx.port, { path: '/echo' });
    await gate.waitForConnections(1, 5000);
    // the pool is kept (same identity, balancer, outlier detection): the endpoint goes in place
    fx.outbound.setUpstreams(upstream([b.port]));
    t.equal(fx.outbound.retiredPools, 0, 'the pool was kept, not retired');
    gate.open(a.port);
    t.equal((await first).status, 200, 'the request that started the dial is served');
    t.equal(a.requests, 1, 'on the removed endpoint, where it was sent');
    // nothing will pick the removed endpoint again: its session closes, not at its maximum age
    const until = Date.now() + 5000;
    while (a.sessions.size > 0 && Date.now() < until) await sleep(5);
    t.equal(a.sessions.size, 0, "the removed endpoint's late session closed");
    for (let i = 0; i < 3; i++) t.equal((await request(fx.port)).status, 200);
    t.equal(a.requests, 1, 'nothing more reached the removed endpoint');
    t.ok(b.requests >= 3, 'the endpoint that replaced it serves');
  });
}
