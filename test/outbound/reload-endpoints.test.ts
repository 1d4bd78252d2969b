// A reload that adds or removes endpoints of an upstream changes its pool in place: the
// endpoints that stay keep their HTTP/2 sessions (no new handshake), their load estimate and
// their outlier ejection; a removed one's sessions finish and close; a new one is used at once.
// Before, any change to the list replaced the whole pool: every session redialled, every
// ejected endpoint back in. The EndpointSet's part (objects kept, names re-resolved, a lookup a
// reload overtook publishing nothing) is checked on its own first.

import t from 'tap';
import { pino } from 'pino';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { EndpointSet, type LookupAll } from '../../src/outbound/endpoints.js';
import { makePki, request, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

const endpoint = (text: string): Endpoint => parseEndpoint(text) as Endpoint;
const keys = (set: EndpointSet) => set.all().map((e) => e.key);

t.test('EndpointSet.reconfigure: endpoints that stay keep their object, removed ones are announced, new names resolve now', async (t) => {
  const answers = new Map<string, string[]>([['one.test', ['10.0.0.1']]]);
  // a lookup the test releases by hand, to overtake one with a reload
  const held: Array<() => void> = [];
  let hold = false;
  const lookup: LookupAll = async (host) => {
    if (hold) await new Promise<void>((resolve) => held.push(resolve));
    return (answers.get(host) ?? []).map((address) => ({ address, family: 4 }));
  };
  const set = new EndpointSet([endpoint('127.0.0.1:1'), endpoint('127.0.0.1:2'), endpoint('dns:one.test:80')], { refreshMs: 60_000, decayMs: 10_000, logger: pino({ level: 'silent' }), lookup });
  t.teardown(() => set.stop());
  await set.start();
  t.same(keys(set), ['127.0.0.1:1', '127.0.0.1:2', '10.0.0.1:80']);
  const [first, second, named] = set.all();
  if (!first || !second || !named) throw new Error('three endpoints expected');
  second.ejected = true;
  const removed: string[] = [];
  set.on('removed', (e) => removed.push(e.key));

  set.reconfigure([endpoint('127.0.0.1:2'), endpoint('127.0.0.1:3'), endpoint('dns:one.test:80')]);
  t.same(keys(set), ['127.0.0.1:2', '127.0.0.1:3', '10.0.0.1:80'], 'the new list, the name keeping its last addresses');
  t.equal(set.all()[0], second, 'the endpoint that stayed is the same object');
  t.ok(set.all()[0]?.ejected, '... still ejected');
  t.equal(set.all()[2], named, 'the resolved one too');
  t.same(removed, ['127.0.0.1:1'], 'the one that went is announced (its sessions wind down)');

  // a name added by a reload is resolved at once, not after refreshMs (a minute here)
  answers.set('two.test', ['10.0.0.2']);
  set.reconfigure([endpoint('127.0.0.1:2'), endpoint('dns:two.test:80')]);
  t.same(keys(set), ['127.0.0.1:2'], 'one.test gone; two.test not resolved yet');
  await waitFor(async () => keys(set).includes('10.0.0.2:80'), 5000, 'two.test resolved');
  t.same(removed, ['127.0.0.1:1', '127.0.0.1:3', '10.0.0.1:80']);

  // a lookup of the old names that ends after the reload must not bring them back
  hold = true;
  answers.set('one.test', ['10.0.0.9']);
  set.reconfigure([endpoint('127.0.0.1:2'), endpoint('dns:one.test:80')]);
  await waitFor(async () => held.length === 1, 5000, 'the lookup of one.test started');
  hold = false;
  set.reconfigure([endpoint('127.0.0.1:2'), endpoint('dns:two.test:80')]);
  await waitFor(async () => keys(set).includes('10.0.0.2:80'), 5000, 'two.test resolved again');
  held.shift()?.();
  // the overtaken lookup settles on the next turns; give it a bounded number of them
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  t.same(keys(set), ['127.0.0.1:2', '10.0.0.2:80'], 'the overtaken lookup of one.test published nothing');
});

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an endpoint added and one removed by a reload; the session to the one that stays is kept`, async (t) => {
    const pki = await makePki(TD);
    const [a, b] = await Promise.all([startUpstream(pki), startUpstream(pki)]);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${a.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await Promise.all([a.close(), b.close()]);
    });
    const upstream = (ports: readonly number[]): UpstreamConfig[] => [{ name: 'payments', endpoints: ports.map((p) => endpoint(`127.0.0.1:${p}`)), identity: UPSTREAM_ID, timeoutMs: 5000, routes: [] }];
    t.equal((await request(fx.port)).status, 200);
    t.equal(a.handshakes.length, 1);
    const [session] = [...a.sessions];

    fx.outbound.setUpstreams(upstream([a.port, b.port]));
    t.equal(fx.outbound.retiredPools, 0, 'the pool was kept, not retired');
    // concurrent pairs: the balancer weighs outstanding requests, so the new endpoint serves
    for (let i = 0; i < 10 && b.requests === 0; i++) t.same((await Promise.all([request(fx.port), request(fx.port)])).map((r) => r.status), [200, 200]);
    t.ok(b.requests > 0, 'the added endpoint serves');
    t.equal(a.handshakes.length, 1, 'no new handshake to the endpoint that stayed');
    t.same([...a.sessions], [session], 'its session is the one from before the reload');

    fx.outbound.setUpstreams(upstream([b.port]));
    await waitFor(async () => a.sessions.size === 0, 5000, "the removed endpoint's session closed");
    const before = a.requests;
    for (let i = 0; i < 4; i++) t.equal((await request(fx.port)).status, 200);
    t.equal(a.requests, before, 'nothing more reaches the removed endpoint');
    t.equal(b.handshakes.length, 1, 'the endpoint that stayed kept its session again');
  });
}

t.test('a reload that replaces the pool during a DNS outage keeps its last addresses', async (t) => {
  // the new pool started with no address: every request 503 until the name resolved again
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  let failing = false;
  let lookups = 0;
  const lookup: LookupAll = async (host) => {
    lookups += 1;
    if (failing) throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: 'EAI_AGAIN' });
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`dns:payments.internal:${up.port}`] }], { lookup, dnsRefreshMs: 100 });
  t.teardown(async () => {
    await fx.close();
    await up.close();
  });
  t.equal((await request(fx.port)).status, 200);
  failing = true;
  const before = lookups;
  await waitFor(async () => lookups >= before + 2, 5000, 'lookups failing');
  t.equal((await request(fx.port)).status, 200, 'the outage keeps the last address');
  // another balancer: a new pool (the old one, idle, closes at once)
  fx.outbound.setUpstreams([{ name: 'payments', endpoints: [endpoint(`dns:payments.internal:${up.port}`)], identity: UPSTREAM_ID, timeoutMs: 2000, routes: [], balancer: { decayMs: 5000 } }]);
  const after = lookups;
  await waitFor(async () => lookups >= after + 2, 5000, "the new pool's lookups fail too");
  for (let i = 0; i < 3; i++) t.equal((await request(fx.port)).status, 200, `request ${i + 1} after the reload: served on the last address`);
});
