// An upstream that advertises SETTINGS_MAX_CONCURRENT_STREAMS 0 (an overloaded peer shedding
// everything), on both codecs: its sessions can carry nothing, so each is closed and the
// request fails with a 503 JSON error naming it, after a bounded number of connections (the
// node codec's agent used to re-dial in an endless loop, hundreds of connections a second
// all left open; the meshcar codec adopted MAX_DIALS idle sessions per request and kept them).

import t from 'tap';
import { makePki, request, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a peer allowing 0 streams gets a bounded number of connections, all closed, and the app a 503`, async (t) => {
    const pki = await makePki(TD);
    const peer = await startMisbehavingH2(pki, 'zeroStreams');
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
      t.match(res.json<object>(), { error: 'upstream_unavailable', message: /no streams|MAX_CONCURRENT_STREAMS/ }, 'a JSON error that says why');
    }
    // a request and its two retries each dial at most once
    const dialled = peer.connections;
    t.ok(dialled <= requests * 3, `${dialled} connections for ${requests} requests`);
    await peer.waitForOpenAtMost(0, 3000);
    t.pass('every session that allowed no stream was closed');
    t.equal(peer.connections, dialled, 'and nothing dialled it again meanwhile');
  });
}
