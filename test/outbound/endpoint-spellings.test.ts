// One upstream address written in several spellings is one endpoint: `[::1]:P`,
// `[0:0:0:0:0:0:0:1]:P` and `[::1]:P` again were two endpoints (keys compared as written), so
// meshcar_upstream_endpoints said 2 and the balancer split one address's load estimate in two.
// Endpoints are keyed by the canonical address (config/address.ts canonicalHost); an IPv4-mapped
// spelling is its IPv4 address. A real outbound, its metrics page read back, a real upstream.

import t from 'tap';
import { pino } from 'pino';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { LiveObservers } from '../../src/metrics/live-observers.js';
import { NO_OBSERVER } from '../../src/metrics/traffic.js';
import { createOutbound } from '../../src/outbound/index.js';
import { appIdentity, makePki, request, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const silent = pino({ level: 'silent' });

function endpointsGauge(text: string, upstream: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`meshcar_upstream_endpoints{upstream="${upstream}"} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

t.test('spellings of one address collapse into one endpoint', async (t) => {
  const pki = await makePki(TD);
  const v6 = await startUpstream(pki, { host: '::1' });
  const v4 = await startUpstream(pki, { host: '127.0.0.1' });
  t.teardown(async () => {
    await v6.close();
    await v4.close();
  });
  const metrics = new Metrics({ processMetrics: false });
  const live = new LiveObservers({ tlsFailures: NO_OBSERVER, traffic: new TrafficMetrics(metrics), logger: silent }, { requests: true, access: false });
  const upstream = (name: string, endpoints: string[]) => ({ name, endpoints: endpoints.map((e) => parseEndpoint(e) as Endpoint), identity: UPSTREAM_ID, timeoutMs: 5000, routes: [] });
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        upstream('payments', [`[::1]:${v6.port}`, `[0:0:0:0:0:0:0:1]:${v6.port}`, `[::1]:${v6.port}`]),
        upstream('orders', [`127.0.0.1:${v4.port}`, `[::ffff:127.0.0.1]:${v4.port}`, `[::ffff:7f00:1]:${v4.port}`]),
      ],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer: live.observer,
  });
  const { port } = await outbound.listen();
  t.teardown(() => outbound.close());
  const page = await metrics.render();
  t.equal(endpointsGauge(page, 'payments'), 1, '[::1] in three spellings: one endpoint');
  t.equal(endpointsGauge(page, 'orders'), 1, '127.0.0.1 and its IPv4-mapped spellings: one endpoint');
  for (let i = 0; i < 4; i++) t.equal((await request(port)).status, 200);
  for (let i = 0; i < 4; i++) t.equal((await request(port, { headers: { host: 'orders' } })).status, 200);
  t.equal(v6.requests, 4);
  t.equal(v4.requests, 4);
});
