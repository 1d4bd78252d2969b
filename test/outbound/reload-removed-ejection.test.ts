// An endpoint a reload removed is out of the outlier detector's books: requests still in flight
// on it that then fail (its instance going away under them, as a scale-down does) do not eject
// it. They did: its failures kept counting, it was "ejected" after the removal (a warn line,
// meshcar_outlier_ejections_total up by one) and meshcar_upstream_ejected_endpoints counted it
// beside the endpoints really in the set, for a whole ejection. Both codecs.

import t from 'tap';
import type { ServerHttp2Stream } from 'node:http2';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const outlierDetection = { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 };
const upstream = (ports: readonly number[]): UpstreamConfig[] => [
  { name: 'payments', endpoints: ports.map((p) => parseEndpoint(`127.0.0.1:${p}`) as Endpoint), identity: UPSTREAM_ID, timeoutMs: 5000, routes: [], outlierDetection },
];

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: requests failing on a removed endpoint do not eject it`, async (t) => {
    const pki = await makePki(TD);
    // a holds every request unanswered; b and c answer
    const held: ServerHttp2Stream[] = [];
    const a = await startUpstream(pki, { handler: (stream) => void held.push(stream.on('error', () => {})) });
    const [b, c] = await Promise.all([startUpstream(pki), startUpstream(pki)]);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${a.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await Promise.all([a.close(), b.close(), c.close()]);
    });
    const ejections: number[] = [];
    const gauge: number[] = [];
    Object.assign(fx.observer, {
      outlierEjected: () => ejections.push(Date.now()),
      ejectedEndpointsChanged: (_upstream: string, n: number) => gauge.push(n),
    });
    // the outlier detection of this config from the start: the next reload changes endpoints only
    fx.outbound.setUpstreams(upstream([a.port]));
    // POSTs: not retried on the others (nothing here is about retries)
    const inFlight = [0, 1, 2].map(() => request(fx.port, { method: 'POST', path: '/echo', body: 'x' }).catch((err: Error) => err));
    const until = Date.now() + 5000;
    while (held.length < 3 && Date.now() < until) await sleep(5);
    t.equal(held.length, 3, 'three requests in flight on a');
    fx.outbound.setUpstreams(upstream([b.port, c.port]));
    t.equal(fx.outbound.retiredPools, 0, 'the pool was kept, not retired');
    // a's instance goes away under its requests
    for (const session of a.sessions) session.destroy();
    for (const result of await Promise.all(inFlight)) t.not(result instanceof Error ? 0 : result.status, 200, 'a request cut on the removed endpoint failed');
    for (let i = 0; i < 4; i++) t.equal((await request(fx.port)).status, 200, 'the endpoints in the set serve');
    t.same(ejections, [], 'the removed endpoint was not ejected');
    t.ok(gauge.every((n) => n === 0), `the ejected-endpoints gauge never counted it (${gauge.join(',')})`);
  });
}
