// Upstreams that end or refuse every session as it opens, on both codecs: each session is
// closed and counted as a failed dial, the request fails with a 503 JSON error, after a bounded
// number of connections, and no session is kept.
// - SETTINGS_MAX_CONCURRENT_STREAMS 0 (an overloaded peer shedding everything): the node codec's
//   agent used to re-dial in an endless loop, hundreds of connections a second all left open;
//   the meshcar codec adopted MAX_DIALS idle sessions per request and kept them.
// - SETTINGS with a GOAWAY in the same read (what a draining sidecar sends a new session): the
//   meshcar codec adopted such a session after its 'close' had already fired, so it stayed in
//   the pool for good (its keepalive timer, the sessions gauge, the lists) and every request
//   dialled again: a review saw 117 dead sessions held and the gauge at 117 after 20 requests.

import t, { type Test } from 'tap';
import { makePki, request, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

/** An outbound whose one upstream endpoint misbehaves as `mode` says; both closed at teardown. */
async function misbehavingUpstream(t: Test, mode: 'zeroStreams' | 'goawayAtConnect', codec: 'node' | 'meshcar') {
  const pki = await makePki(TD);
  const peer = await startMisbehavingH2(pki, mode);
  const fx = await startBalanced(pki, { ports: [peer.port], timeoutMs: 1000, codec, tuning: { pingIntervalMs: 60_000 } });
  t.teardown(async () => {
    await fx.close();
    await peer.close();
  });
  return { peer, fx };
}

const REQUESTS = 5;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a peer allowing 0 streams gets a bounded number of connections, all closed, and the app a 503`, async (t) => {
    const { peer, fx } = await misbehavingUpstream(t, 'zeroStreams', codec);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await request(fx.port, { path: '/echo' });
      t.equal(res.status, 503, 'a 503');
      t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
      t.match(res.json<object>(), { error: 'upstream_unavailable', message: /no streams|MAX_CONCURRENT_STREAMS/ }, 'a JSON error that says why');
    }
    // a request and its two retries each dial at most once
    const dialled = peer.connections;
    t.ok(dialled <= REQUESTS * 3, `${dialled} connections for ${REQUESTS} requests`);
    await peer.waitForOpenAtMost(0, 3000);
    t.pass('every session that allowed no stream was closed');
    t.equal(peer.connections, dialled, 'and nothing dialled it again meanwhile');
  });

  t.test(`${codec} codec: sessions a peer ends as it opens them are not kept, and the app gets a 503`, async (t) => {
    const { peer, fx } = await misbehavingUpstream(t, 'goawayAtConnect', codec);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await request(fx.port, { path: '/echo' });
      t.equal(res.status, 503, 'a 503');
      t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
    }
    // a request and its two retries each dial at most MAX_DIALS (3) times
    t.ok(peer.connections <= REQUESTS * 3 * 3, `${peer.connections} connections for ${REQUESTS} requests`);
    await peer.waitForOpenAtMost(0, 3000);
    t.pass('every such connection was closed');
    const until = Date.now() + 3000;
    while ((fx.observer.sessions.get('payments') ?? 0) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    t.equal(fx.observer.sessions.get('payments') ?? 0, 0, 'the sessions gauge is back at 0: no session kept');
  });
}
