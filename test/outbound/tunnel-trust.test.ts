// A trust-bundle change that drops the root a WebSocket tunnel's peer chains to cuts the tunnel,
// on either sidecar, as it cuts HTTP/2 sessions and keep-alive connections (upstream-trust.ts,
// caller-trust.ts): a tunnel rides its own mutual TLS connection and stayed open, carrying
// bytes between a caller and an upstream one side no longer trusted. A tunnel whose peer chains
// to a root that stays is kept. Real sidecar pair (tunnel-pair.ts), real roots (makePki).

import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { validateSvid } from '../../src/identity/svid.js';
import { memoryLogger } from '../helpers/ca.js';
import { SERVER_ID, TD } from '../helpers/inbound-fixture.js';
import { APP_ID } from '../helpers/outbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import { closedWithin, endings, openTunnel, startTunnelPair, switchingFarApp, SWITCHING, type FarApp } from '../helpers/tunnel-pair.js';

for (const side of ['outbound', 'inbound'] as const) {
  t.test(`the ${side} sidecar's bundle drops the peer's root: its tunnel is cut, with resets and a warn line`, async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const app = switchingFarApp();
    const pair = await startTunnelPair(app.far, side === 'outbound' ? { outboundLogger: memoryLogger(lines) } : { inboundLogger: memoryLogger(lines) });
    t.teardown(() => pair.close());
    const a = pair.inbound.pki; // both sidecars' certificates chain to A
    const [b, c] = [await makePki(TD), await makePki(TD)];
    const fx = side === 'outbound' ? pair.outbound : pair.inbound;
    const ownId = side === 'outbound' ? APP_ID : SERVER_ID;
    const own = await a.issue(ownId);
    fx.identity.swap(validateSvid({ ...own, bundlePem: a.bundlePem + b.bundlePem + c.bundlePem }, ownId));
    const tunnel = await openTunnel(pair.outbound.port);
    tunnel.socket.write('ping');

    // another root leaves: the peer still chains to A, the tunnel stays
    fx.identity.swap(validateSvid({ ...own, bundlePem: a.bundlePem + b.bundlePem }, ownId));
    t.same(await closedWithin(tunnel, 300), ['still open'], 'a root the peer does not chain to removed: kept');

    // A leaves (a root rotation's retire step: the sidecar's own certificate now from B)
    fx.identity.swap(validateSvid({ ...(await b.issue(ownId)), bundlePem: b.bundlePem }, ownId));
    const seen = await closedWithin(tunnel, 3000);
    t.equal(seen.at(-1), 'close', `the calling app's tunnel closed (${seen.join(', ')})`);
    t.match(seen, ['error:ECONNRESET'], 'with a reset, not a clean end');
    const far = await closedWithin(app.seen(), 3000);
    t.match(far, ['error:ECONNRESET', 'close'], `the far app's end closed with a reset too (${far.join(', ')})`);
    const warned = lines.filter((line) => line.level === 40 && /root|bundle/.test(String(line.msg)));
    t.equal(warned.length, 1, `one warn line (${JSON.stringify(warned.map((line) => line.msg))})`);
  });
}

t.test('a tunnel of an upstream a reload removed is still cut when the bundle drops its root', async (t) => {
  const app = switchingFarApp();
  const pair = await startTunnelPair(app.far);
  t.teardown(() => pair.close());
  const a = pair.inbound.pki;
  const b = await makePki(TD);
  const fx = pair.outbound;
  fx.identity.swap(validateSvid({ ...(await a.issue(APP_ID)), bundlePem: a.bundlePem + b.bundlePem }, APP_ID));
  const tunnel = await openTunnel(fx.port);
  tunnel.socket.write('ping');
  // the reload: the upstream goes from the config while its tunnel is open (its pool is retired)
  fx.outbound.setUpstreams([]);
  t.same(await closedWithin(tunnel, 300), ['still open'], 'the reload itself leaves the open tunnel be');
  fx.identity.swap(validateSvid({ ...(await b.issue(APP_ID)), bundlePem: b.bundlePem }, APP_ID));
  const seen = await closedWithin(tunnel, 3000);
  t.equal(seen.at(-1), 'close', `the calling app's tunnel closed (${seen.join(', ')})`);
  t.match(seen, ['error:ECONNRESET'], 'with a reset, not a clean end');
});

// a tunnel never finishes as a request does: one to the identity a reload replaced went on
// relaying to that peer until its certificate expired (a review)
t.test("a reload that changes the upstream's identity cuts its tunnels; one that keeps it does not", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const app = switchingFarApp();
  const pair = await startTunnelPair(app.far, { outboundLogger: memoryLogger(lines) });
  t.teardown(() => pair.close());
  const fx = pair.outbound;
  const upstream = (identity: string, balancer?: UpstreamConfig['balancer']): UpstreamConfig[] => [
    { name: 'orders', endpoints: [parseEndpoint(`127.0.0.1:${pair.inbound.port}`) as Endpoint], identity, timeoutMs: 5000, routes: [], ...(balancer ? { balancer } : {}) },
  ];
  const tunnel = await openTunnel(fx.port);
  tunnel.socket.write('ping');
  // a new pool (the balancer changed), the same identity: the peer is still the one named
  fx.outbound.setUpstreams(upstream(SERVER_ID, { decayMs: 5000 }));
  t.equal(fx.outbound.retiredPools, 1, 'the reload replaced the pool');
  t.same(await closedWithin(tunnel, 300), ['still open'], 'same identity: the tunnel stays');
  fx.outbound.setUpstreams(upstream(`spiffe://${TD}/svc/other`));
  const seen = await closedWithin(tunnel, 3000);
  t.equal(seen.at(-1), 'close', `another identity: the calling app's tunnel closed (${seen.join(', ')})`);
  t.match(seen, ['error:ECONNRESET'], 'with a reset, not a clean end');
  const far = await closedWithin(app.seen(), 3000);
  t.match(far, ['error:ECONNRESET', 'close'], `the far app's end closed with a reset too (${far.join(', ')})`);
  const warned = lines.filter((line) => line.level === 40 && /identity/.test(String(line.msg)));
  t.equal(warned.length, 1, `one warn line (${JSON.stringify(warned.map((line) => line.msg))})`);
  t.match(String(warned[0]?.msg), /svc\/other/, 'naming the new identity');
});

// a tunnel's guard joins its pool at the 101: one still opening when the reload came was never
// cut, and its retired pool, idle to all appearances, was let go, so no later reload or bundle
// change reached it either (a re-review)
t.test("a tunnel still opening when a reload changes the upstream's identity is cut as it opens; its pool is kept meanwhile", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  let release: (() => void) | undefined;
  let farSeen: ReturnType<typeof endings> | undefined;
  const far: FarApp = (socket) => {
    farSeen = endings(socket);
    release = () => {
      socket.write(SWITCHING);
      socket.resume();
    };
  };
  const pair = await startTunnelPair(far, { outboundLogger: memoryLogger(lines) });
  t.teardown(() => pair.close());
  const fx = pair.outbound;
  const opening = openTunnel(fx.port);
  for (let i = 0; i < 250 && release === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(release, 'the far app has the upgrade');
  fx.outbound.setUpstreams([{ name: 'orders', endpoints: [parseEndpoint(`127.0.0.1:${pair.inbound.port}`) as Endpoint], identity: `spiffe://${TD}/svc/other`, timeoutMs: 5000, routes: [] }]);
  t.equal(fx.outbound.retiredPools, 1, 'the retired pool is kept while its tunnel opens');
  release?.();
  const tunnel = await opening;
  // the reset comes right behind the 101: libuv reads it as an end (tunnel-reset.ts), or a reset
  const ended = await closedWithin({ events: tunnel.events, closed: new Promise<void>((done) => (tunnel.events.length > 0 ? done() : tunnel.socket.once('end', done).once('error', () => done()))) }, 3000);
  t.ok(ended.includes('end') || ended.includes('error:ECONNRESET'), `the calling app's tunnel ended as it opened (${ended.join(', ')})`);
  tunnel.socket.destroy();
  t.match(await closedWithin(farSeen!, 3000), ['error:ECONNRESET', 'close'], "the far app's end closed with a reset too");
  const warned = lines.filter((line) => line.level === 40 && /identity/.test(String(line.msg)));
  t.equal(warned.length, 1, `one warn line (${JSON.stringify(warned.map((line) => line.msg))})`);
  t.match(String(warned[0]?.msg), /svc\/other/, 'naming the identity the reload named');
});
