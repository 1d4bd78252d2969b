// What an operator sees of upstream endpoint discovery in /metrics, as Envoy's cluster
// membership_total and update_failure: meshcar_upstream_endpoints{upstream} (the addresses known
// now, IPs as written included) and meshcar_upstream_lookup_failures_total{upstream} (failed
// lookups of its names). A real outbound with a resolver the test controls, the sidecar's
// observer chain (LiveObservers → TrafficMetrics) and registry, the rendered text read back.
// Before, only the log told of an upstream with no address or failing lookups, /ready said 200.

import t from 'tap';
import { pino } from 'pino';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { LiveObservers } from '../../src/metrics/live-observers.js';
import { NO_OBSERVER, type TrafficObserver } from '../../src/metrics/traffic.js';
import { createOutbound, type LookupAll } from '../../src/outbound/index.js';
import { appIdentity, makePki, request, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const silent = pino({ level: 'silent' });
const samples = (text: string, family: string) => text.split('\n').filter((l) => l.startsWith(`${family}{`));
const value = (text: string, family: string, upstream: string) => {
  const line = samples(text, family).find((l) => l.startsWith(`${family}{upstream="${upstream}"} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

const upstream = (name: string, endpoints: readonly string[], identity = UPSTREAM_ID): UpstreamConfig => ({
  name,
  endpoints: endpoints.map((text) => parseEndpoint(text) as Endpoint),
  identity,
  timeoutMs: 5000,
  routes: [],
});

/** Polls `check` (the page is rendered asynchronously) until it holds, at most `ms`. */
async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

/** A resolver the test answers for: a name's addresses, or failing while `failing` has it. */
function resolver() {
  const records = new Map<string, string[]>();
  const failing = new Set<string>();
  /** Names whose lookups wait until released (a lookup still running as a reload comes). */
  const held = new Map<string, Promise<void>>();
  let lookups = 0;
  const lookup: LookupAll = async (host) => {
    lookups += 1;
    await held.get(host);
    if (failing.has(host)) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return (records.get(host) ?? []).map((address) => ({ address, family: 4 }));
  };
  const hold = (host: string): (() => void) => {
    let release = () => {};
    held.set(host, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      held.delete(host);
      release();
    };
  };
  return { records, failing, lookup, hold, lookups: () => lookups };
}

async function setUp(t: Parameters<Parameters<typeof t.test>[1]>[0], upstreams: UpstreamConfig[], dns: ReturnType<typeof resolver>, pki?: Awaited<ReturnType<typeof makePki>>) {
  pki ??= await makePki(TD);
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  const live = new LiveObservers({ tlsFailures: NO_OBSERVER, traffic, logger: silent }, { requests: true, access: false });
  // every call the data plane makes about addresses, to see none is made per request
  const calls: string[] = [];
  const observer = live.observer;
  // the live observer underneath (its other methods inherited), these two counted on the way
  const counting = Object.create(observer) as TrafficObserver;
  for (const key of ['upstreamEndpointsChanged', 'upstreamLookupFailed'] as const) {
    const forward = observer[key] as (...args: unknown[]) => void;
    Object.defineProperty(counting, key, {
      value: (...args: unknown[]) => {
        calls.push(`${key} ${String(args[0])}`);
        forward.apply(observer, args);
      },
    });
  }
  const outbound = createOutbound({ config: { listen: { host: '127.0.0.1', port: 0 }, upstreams }, identity: await appIdentity(pki), logger: silent, observer: counting, options: { dnsRefreshMs: 50, lookup: dns.lookup } });
  const { port } = await outbound.listen();
  t.teardown(() => outbound.close());
  const page = () => metrics.render();
  return { pki, outbound, port, page, calls, live };
}

t.test('the gauge follows the records; failed lookups are counted, the last addresses kept', async (t) => {
  const dns = resolver();
  dns.records.set('orders.internal', ['127.0.0.2']);
  const { page } = await setUp(t, [upstream('orders', ['dns:orders.internal:443']), upstream('payments', ['127.0.0.1:1', '127.0.0.1:2'])], dns);
  let text = await page();
  t.match(text, /^# TYPE meshcar_upstream_endpoints gauge$/m);
  t.match(text, /^# TYPE meshcar_upstream_lookup_failures_total counter$/m);
  t.equal(value(text, 'meshcar_upstream_endpoints', 'payments'), 2, 'static IP endpoints count too');
  t.equal(value(text, 'meshcar_upstream_endpoints', 'orders'), 1, 'the name resolved to one address');
  // at 0 before any failure, as Envoy's update_failure: a series born at 1 has no increase(), so
  // an alert on increase(...) > 0 would miss an upstream's first failed lookup
  t.equal(value(text, 'meshcar_upstream_lookup_failures_total', 'orders'), 0, 'no failed lookup yet: 0, not absent');

  dns.records.set('orders.internal', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  t.ok(await waitFor(async () => value(await page(), 'meshcar_upstream_endpoints', 'orders') === 3, 3000), 'three records: 3');
  dns.records.set('orders.internal', ['127.0.0.4']);
  t.ok(await waitFor(async () => value(await page(), 'meshcar_upstream_endpoints', 'orders') === 1, 3000), 'back to one: 1');

  dns.failing.add('orders.internal');
  const before = dns.lookups();
  t.ok(await waitFor(() => dns.lookups() >= before + 4, 3000), 'four lookups failed');
  text = await page();
  t.ok((value(text, 'meshcar_upstream_lookup_failures_total', 'orders') ?? 0) >= 4, `each failed lookup counted (${value(text, 'meshcar_upstream_lookup_failures_total', 'orders')})`);
  t.equal(value(text, 'meshcar_upstream_endpoints', 'orders'), 1, 'the last address is kept, and said');
  t.equal(value(text, 'meshcar_upstream_lookup_failures_total', 'payments'), 0, 'an upstream without names fails no lookup');

  // a name answering no address at all is a failed lookup too (endpoints.ts keeps the last ones)
  dns.failing.delete('orders.internal');
  dns.records.set('orders.internal', []);
  const failed = value(text, 'meshcar_upstream_lookup_failures_total', 'orders') ?? 0;
  t.ok(await waitFor(async () => (value(await page(), 'meshcar_upstream_lookup_failures_total', 'orders') ?? 0) >= failed + 2, 3000), 'an empty answer counts as failed');
});

t.test('an upstream that never resolved says 0, and a request finds none', async (t) => {
  const dns = resolver();
  dns.failing.add('gone.internal');
  const { page, port } = await setUp(t, [upstream('gone', ['dns:gone.internal:443'])], dns);
  t.ok(await waitFor(async () => (value(await page(), 'meshcar_upstream_lookup_failures_total', 'gone') ?? 0) >= 1, 3000));
  t.equal(value(await page(), 'meshcar_upstream_endpoints', 'gone'), 0, 'no address: 0, what an alert looks for');
  const res = await request(port, { headers: { host: 'gone' } });
  t.equal(res.status, 503, 'and requests get 503 upstream_unavailable');
});

t.test('requests cost nothing here: the counts move at lookups only', async (t) => {
  const dns = resolver();
  const pki = await makePki(TD);
  const app = await startUpstream(pki);
  t.teardown(() => app.close());
  // a name resolved once and not again for the test's length: any call now comes from requests
  const { port, calls, outbound } = await setUp(t, [upstream('payments', [`127.0.0.1:${app.port}`])], dns, pki);
  t.same(calls, ['upstreamEndpointsChanged payments'], 'told once, when the pool was made');
  for (let i = 0; i < 30; i++) t.equal((await request(port, { headers: { host: 'payments' } })).status, 200);
  t.same(calls, ['upstreamEndpointsChanged payments'], 'thirty requests told nothing');
  // a refresh that finds the same addresses tells nothing either
  dns.records.set('orders.internal', ['127.0.0.5']);
  outbound.setUpstreams([upstream('payments', [`127.0.0.1:${app.port}`]), upstream('orders', ['dns:orders.internal:443'])]);
  const lookups = dns.lookups();
  t.ok(await waitFor(() => dns.lookups() >= lookups + 5, 3000));
  t.same(calls.filter((c) => c.endsWith('orders')), ['upstreamEndpointsChanged orders', 'upstreamEndpointsChanged orders'], 'orders: 0 when made, 1 once resolved, then nothing at each same answer');
});

t.test('a reload: a removed upstream loses its address gauge; a replaced pool is not overwritten by the old one', async (t) => {
  const dns = resolver();
  dns.records.set('orders.internal', ['127.0.0.2', '127.0.0.3']);
  dns.failing.add('broken.internal');
  const { page, outbound } = await setUp(t, [upstream('orders', ['dns:orders.internal:443']), upstream('broken', ['dns:broken.internal:443'])], dns);
  t.ok(await waitFor(async () => (value(await page(), 'meshcar_upstream_lookup_failures_total', 'broken') ?? 0) >= 1, 3000));
  t.equal(value(await page(), 'meshcar_upstream_endpoints', 'orders'), 2);

  // broken removed; orders replaced (another identity: a new pool) and its names changed, while
  // the old pool's lookup of orders.internal is still running
  const release = dns.hold('orders.internal');
  const held = dns.lookups();
  t.ok(await waitFor(() => dns.lookups() > held, 3000), 'a lookup of orders.internal runs');
  dns.records.set('orders-v2.internal', ['127.0.0.9']);
  outbound.setUpstreams([upstream('orders', ['dns:orders-v2.internal:443'], `spiffe://${TD}/svc/orders`)]);
  dns.records.set('orders.internal', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  release();
  let text = await page();
  t.same(samples(text, 'meshcar_upstream_endpoints').filter((l) => l.includes('broken')), [], 'the removed upstream has no address gauge (0 would read as an outage)');
  t.ok((value(text, 'meshcar_upstream_lookup_failures_total', 'broken') ?? 0) >= 1, 'its failure count stays, frozen (a counter never goes down)');
  t.ok(await waitFor(async () => value(await page(), 'meshcar_upstream_endpoints', 'orders') === 1, 3000), 'orders: the new pool’s one address');
  // the retired pool's lookups stopped: nothing brings back its 2 or broken's series
  const lookups = dns.lookups();
  t.ok(await waitFor(() => dns.lookups() >= lookups + 4, 3000));
  text = await page();
  t.equal(value(text, 'meshcar_upstream_endpoints', 'orders'), 1, 'still the new pool’s count');
  t.same(samples(text, 'meshcar_upstream_endpoints').filter((l) => l.includes('broken')), [], 'broken stays gone');

  // endpoints changed in place (same pool): an IP added beside the name
  outbound.setUpstreams([upstream('orders', ['dns:orders-v2.internal:443', '127.0.0.1:7'], `spiffe://${TD}/svc/orders`)]);
  t.equal(value(await page(), 'meshcar_upstream_endpoints', 'orders'), 2, 'the reload itself tells the new count');
});

t.test('metrics.requests off and on again: the gauge is handed over, not missing until the next lookup', async (t) => {
  const dns = resolver();
  const { page, live } = await setUp(t, [upstream('payments', ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'])], dns);
  t.equal(value(await page(), 'meshcar_upstream_endpoints', 'payments'), 3);
  live.switchTo({ requests: false, access: false });
  t.same(samples(await page(), 'meshcar_upstream_endpoints'), [], 'off: no sample');
  live.switchTo({ requests: true, access: false });
  t.equal(value(await page(), 'meshcar_upstream_endpoints', 'payments'), 3, 'on again: 3 at once');
});
