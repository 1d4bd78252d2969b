// An upstream whose SETTINGS come with a GOAWAY in the same read (what a draining sidecar sends a
// new session), on both codecs: the session is a failed dial, never kept. The meshcar codec
// adopted such a session after its 'close' had already fired, so it stayed in the pool for good
// (its keepalive timer, the sessions gauge, the lists) and every request dialled again: a review
// saw 117 dead sessions held and the gauge at 117 after 20 requests, with no connection open.

import t from 'tap';
import { makePki, request, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: sessions a peer ends as it opens them are not kept, and the app gets a 503`, async (t) => {
    const pki = await makePki(TD);
    const peer = await startMisbehavingH2(pki, 'goawayAtConnect');
    const fx = await startBalanced(pki, { ports: [peer.port], timeoutMs: 1000, codec, tuning: { pingIntervalMs: 60_000 } });
    t.teardown(async () => {
      await fx.close();
      await peer.close();
    });
    const requests = 5;
    for (let i = 0; i < requests; i++) {
      const res = await request(fx.port, { path: '/echo' });
      t.equal(res.status, 503, 'a 503');
      t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
    }
    // a request and its two retries each dial at most MAX_DIALS (3) times
    t.ok(peer.connections <= requests * 3 * 3, `${peer.connections} connections for ${requests} requests`);
    await peer.waitForOpenAtMost(0, 3000);
    t.pass('every such connection was closed');
    const until = Date.now() + 3000;
    while ((fx.observer.sessions.get('payments') ?? 0) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    t.equal(fx.observer.sessions.get('payments') ?? 0, 0, 'the sessions gauge is back at 0: no session kept');
  });
}
