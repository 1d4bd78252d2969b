// Requests waiting on a dial count against their endpoint from the moment it is picked (both
// codecs): beside two healthy endpoints, a third that completes TLS and then hangs (no
// SETTINGS) must not draw the traffic into its dial. Uncounted, its cost stayed 0 (no latency
// yet, nothing outstanding) and every power-of-two pair that held it sent the request there:
// ~2/3 of the requests waited on the hung dial.
//
// What is checked is where the requests went (the healthy upstreams count what they served),
// not how long anything took: the hung dial outlasts the test (20 s timeout), so a request
// that picked it is still waiting at the end, and one sent to a healthy endpoint is answered.

import t from 'tap';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';
import { waitFor } from '../helpers/mode-gate.js';

const REQUESTS = 30;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a hanging new endpoint takes one request into its dial, not most of them`, async (t) => {
    const pki = await makePki(TD);
    const a = await startUpstream(pki);
    const b = await startUpstream(pki);
    const hung = await startMisbehavingH2(pki, 'silent');
    const fx = await startBalanced(pki, { ports: [a.port, b.port, hung.port], timeoutMs: 20_000, codec, tuning: { pingIntervalMs: 60_000 } });
    t.teardown(async () => {
      await fx.close();
      await a.close();
      await b.close();
      await hung.close();
    });
    const served = () => a.requests + b.requests;
    // one after another, so the healthy endpoints have their latency samples; a request that
    // is not answered within 50 ms is waiting on the hung dial, and the next one goes on
    const all: Array<Promise<unknown>> = [];
    for (let i = 0; i < REQUESTS; i++) {
      const res = request(fx.port, { path: '/echo' }).catch(() => undefined); // the hung ones end at close
      all.push(res);
      await Promise.race([res, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    // those sent to a healthy endpoint are all answered; the rest wait on the hung dial
    await waitFor('the healthy endpoints served all but a few', () => served() >= REQUESTS - 3, 5000).catch(() => undefined);
    const waiting = REQUESTS - served();
    t.ok(waiting >= 0 && waiting <= 3, `${waiting} of ${REQUESTS} requests went to the hung endpoint's dial (a: ${a.requests}, b: ${b.requests})`);
    t.ok(hung.connections >= 1 && hung.connections <= 2, `the hung endpoint was dialled ${hung.connections} time(s)`);
  });
}
