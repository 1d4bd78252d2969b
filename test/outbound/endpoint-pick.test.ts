// Power of two choices when one of the two drawn cannot be taken (ejected, resting after a
// connect failure, already tried): the other is weighed against another candidate, not taken
// unweighed. Before, with the ejection cap reached, an endpoint failing every request drew its
// uniform share beside an ejected one (the gRPC review: 26 of 90 calls failed, 3 endpoints).

import t from 'tap';
import { performance } from 'node:perf_hooks';
import { initialLoad } from '../../src/outbound/balancer.js';
import { pickEndpoint } from '../../src/outbound/endpoint-pick.js';
import type { UpstreamEndpoint } from '../../src/outbound/endpoints.js';

function endpoint(port: number, ewma: number, state: Partial<Pick<UpstreamEndpoint, 'ejected' | 'downUntil' | 'probing'>> = {}): UpstreamEndpoint {
  return { key: `127.0.0.1:${port}`, address: '127.0.0.1', port, origin: new URL(`https://127.0.0.1:${port}`), downUntil: 0, ...initialLoad(), ewma, stamp: performance.now(), ...state };
}

t.test('an ejected endpoint drawn: the other is weighed against a third', async (t) => {
  const ejected = endpoint(1, 1, { ejected: true });
  const failing = endpoint(2, 250); // its penalty: a failure is a 250 ms sample
  const healthy = endpoint(3, 1);
  const list = [ejected, failing, healthy];
  const picks = new Map<UpstreamEndpoint, number>();
  for (let i = 0; i < 3000; i++) {
    const chosen = pickEndpoint(list, 10_000, performance.now());
    if (chosen) picks.set(chosen, (picks.get(chosen) ?? 0) + 1);
  }
  t.equal(picks.get(ejected) ?? 0, 0, 'never the ejected one');
  t.equal(picks.get(failing) ?? 0, 0, `never the failing one (a third of the picks when taken unweighed)`);
  t.equal(picks.get(healthy), 3000, 'the healthy one every time');
});

t.test('a resting endpoint and a tried one count as ineligible too; alone, an eligible one is still taken', async (t) => {
  const resting = endpoint(1, 1, { downUntil: performance.now() + 60_000 });
  const costly = endpoint(2, 500);
  const cheap = endpoint(3, 1);
  const tried = new Set([cheap]);
  for (let i = 0; i < 200; i++) t.equal(pickEndpoint([resting, costly, cheap], 10_000, performance.now(), undefined, tried), costly, 'the only candidate left');
  const twoOnly = [resting, costly];
  let costlyPicks = 0;
  for (let i = 0; i < 200; i++) if (pickEndpoint(twoOnly, 10_000, performance.now()) === costly) costlyPicks++;
  t.equal(costlyPicks, 200, 'with no one to weigh it against, it is taken');
});

t.test('a retry whose only healthy endpoints were tried already goes back to one of them, not to an ejected one', async (t) => {
  const first = endpoint(1, 250);
  const last = endpoint(2, 250, { ejected: true });
  const ejected = endpoint(3, 1, { ejected: true });
  const list = [first, last, ejected];
  const tried = new Set([first, last]);
  for (let i = 0; i < 100; i++) t.equal(pickEndpoint(list, 10_000, performance.now(), last, tried), undefined, 'none here: the pool asks again leaving out fewer');
  t.equal(pickEndpoint(list, 10_000, performance.now(), last), first, 'leaving out the last one only: the healthy first one');
  t.equal(pickEndpoint(list, 10_000, performance.now(), undefined, tried), ejected, "the connect failover (no avoid) takes an untried one of any state");
});

// review of the probe's exclusion: an endpoint with a probe PING out (outbound/probed-endpoint-avoided)
t.test('an endpoint being probed: below a healthy one, above a resting or ejected one, the cheapest of several', async (t) => {
  const probed = endpoint(1, 1, { probing: 1 });
  const healthy = endpoint(2, 50);
  const resting = endpoint(3, 1, { downUntil: performance.now() + 60_000 });
  const ejected = endpoint(4, 1, { ejected: true });
  const count = (list: UpstreamEndpoint[], of: UpstreamEndpoint) => {
    let n = 0;
    for (let i = 0; i < 1000; i++) if (pickEndpoint(list, 10_000, performance.now()) === of) n++;
    return n;
  };
  t.equal(count([probed, healthy], healthy), 1000, 'a healthy one, costlier, is taken over it');
  t.equal(count([probed, resting], probed), 1000, 'it is taken over a resting one (a tie before: half went to dial the resting one)');
  t.equal(count([probed, resting, ejected], probed), 1000, 'and over a resting and an ejected one');
  const dear = endpoint(5, 10_000, { probing: 1 });
  t.equal(count([dear, probed], probed), 1000, 'among probed ones, the cheapest (a coin toss before)');
});

t.test('a retry from an endpoint with a probe out, when only a resting or ejected one is left: back to it', async (t) => {
  const probed = endpoint(1, 1, { probing: 1 });
  const resting = endpoint(2, 1, { downUntil: performance.now() + 60_000 });
  const ejected = endpoint(3, 1, { ejected: true });
  for (const others of [[resting], [ejected], [resting, ejected]]) {
    const list = [probed, ...others];
    let back = 0;
    for (let i = 0; i < 500; i++) {
      // the pool's chain (upstream-pool.ts openStream): with `avoid` and `tried`, with `avoid`, then without
      const now = performance.now();
      const chosen = pickEndpoint(list, 10_000, now, probed, new Set([probed])) ?? pickEndpoint(list, 10_000, now, probed) ?? pickEndpoint(list, 10_000, now);
      if (chosen === probed) back++;
    }
    t.equal(back, 500, `beside ${others.length === 2 ? 'a resting and an ejected one' : others[0] === resting ? 'a resting one' : 'an ejected one'} (all went to it before)`);
  }
});
