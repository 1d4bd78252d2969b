// HTTP/2 session pooling toward an upstream, counted at the server (handshakes and TCP
// connections), never assumed: concurrent requests share one session; sequential ones reuse it;
// a new session opens only when the peer's SETTINGS_MAX_CONCURRENT_STREAMS is used up; GOAWAY
// lets requests in flight finish while the next request opens (and resumes TLS for) a new
// session; sessions past their maximum age are replaced; idle sessions are PINGed. Each test
// runs on both HTTP/2 codecs (`node`: http2-wrapper + core http2; `meshcar`: src/h2).

import t from 'tap';
import { makePki, request, sleep, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`50 concurrent requests share ONE session; sequential requests reuse it (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => request(fx.port, { path: `/slow/50?i=${i}` })));
    t.same(new Set(results.map((r) => r.status)), new Set([200]), 'all 50 succeeded');
    t.equal(upstream.connections, 1, 'one TCP connection');
    t.equal(upstream.handshakes.length, 1, 'one TLS handshake');
    for (let i = 0; i < 10; i++) t.equal((await request(fx.port)).status, 200);
    t.equal(upstream.handshakes.length, 1, 'sequential requests reused the session');
    t.equal(upstream.requests, 60);
    t.equal(fx.outbound.sessionCount('payments'), 1);
    t.equal(fx.observer.sessions.get('payments'), 1, 'the sessions gauge says 1');
    await fx.observer.waitForRequests(60);
    t.equal(fx.observer.streams.get('payments'), 0, 'every stream was reported closed');
  });

  t.test(`a new session only when the peer allows no more streams on the open ones (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, { settings: { maxConcurrentStreams: 10 } });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const results = await Promise.all(Array.from({ length: 30 }, () => request(fx.port, { path: '/slow/300' })));
    t.same(new Set(results.map((r) => r.status)), new Set([200]), 'all 30 succeeded');
    const sessions = upstream.handshakes.length;
    t.ok(sessions >= 2 && sessions <= 4, `30 requests at 10 streams per session used ${sessions} sessions (2..4)`);
    t.equal(upstream.connections, sessions);
    const before = upstream.handshakes.length;
    await Promise.all(Array.from({ length: 5 }, () => request(fx.port)));
    t.equal(upstream.handshakes.length, before, 'a light load fits the sessions already open');
  });

  t.test(`GOAWAY: the request in flight finishes; the next one opens a new session (resuming TLS) (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    t.equal((await request(fx.port)).status, 200);
    await sleep(50); // the TLS 1.3 session ticket arrives after the handshake
    const inFlight = request(fx.port, { path: '/slow/400' });
    await sleep(100);
    const [first] = upstream.sessions;
    first?.goaway(); // NO_ERROR, last stream = the one in flight
    await sleep(50);
    const next = await request(fx.port);
    t.equal(next.status, 200, 'the request after GOAWAY succeeded');
    t.equal(upstream.handshakes.length, 2, 'on a new session');
    t.equal(upstream.handshakes[1]?.resumed, true, 'which resumed the TLS session');
    t.equal((await inFlight).status, 200, 'the request in flight finished on the old session');
    t.equal((await request(fx.port)).status, 200);
    t.equal(upstream.handshakes.length, 2, 'and the new session is reused');
    await waitUntil(() => fx.outbound.sessionCount('payments') === 1, 'the old session to close');
    t.equal(fx.outbound.sessionCount('payments'), 1, 'the old session closed');
  });

  t.test(`sessions past their maximum age are closed gracefully and replaced (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec, maxSessionAgeMs: 300 });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    t.equal((await request(fx.port)).status, 200);
    // a request still running when the session reaches its age finishes on it
    const longer = request(fx.port, { path: '/slow/400' });
    t.equal((await request(fx.port)).status, 200);
    t.equal(upstream.handshakes.length, 1, 'young: reused');
    await sleep(450);
    t.equal((await longer).status, 200, 'the request that outlived the age finished');
    const after = await request(fx.port);
    t.equal(after.status, 200);
    t.equal(upstream.handshakes.length, 2, 'a new session after the maximum age');
    await waitUntil(() => fx.outbound.sessionCount('payments') === 1, 'the old session to go');
    t.equal(fx.outbound.sessionCount('payments'), 1, 'the old one is gone');
    t.equal(fx.observer.sessions.get('payments'), 1);
  });

  t.test(`idle sessions are PINGed and stay up (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec, pingIntervalMs: 100 });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    t.equal((await request(fx.port)).status, 200);
    // a PING whenever the peer was silent for a whole interval: every other tick while idle
    const until = Date.now() + 3000;
    while (upstream.pings < 2 && Date.now() < until) await sleep(20);
    t.ok(upstream.pings >= 2, `the idle session was PINGed (${upstream.pings})`);
    t.equal((await request(fx.port)).status, 200);
    t.equal(upstream.handshakes.length, 1, 'answered PINGs keep the session');
  });
}
