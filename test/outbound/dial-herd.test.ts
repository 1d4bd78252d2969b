// Requests waiting on a dial count against their endpoint from the moment it is picked (both
// codecs): beside two healthy endpoints, a third that completes TLS and then hangs (no
// SETTINGS) must not draw the traffic into its dial. Uncounted, its cost stayed 0 (no latency
// yet, nothing outstanding) and every power-of-two pair that held it sent the request there:
// ~2/3 of the requests waited out the timeout.

import t from 'tap';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a hanging new endpoint takes one request into its dial, not most of them`, async (t) => {
    const pki = await makePki(TD);
    const a = await startUpstream(pki);
    const b = await startUpstream(pki);
    const hung = await startMisbehavingH2(pki, 'silent');
    const fx = await startBalanced(pki, { ports: [a.port, b.port, hung.port], timeoutMs: 1500, codec, tuning: { pingIntervalMs: 60_000 } });
    t.teardown(async () => {
      await fx.close();
      await a.close();
      await b.close();
      await hung.close();
    });
    // 30 requests started 10 ms apart: all of them inside the hung dial's 1.5 s
    const results = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 10));
        const started = Date.now();
        const res = await request(fx.port, { path: '/echo' });
        return { status: res.status, ms: Date.now() - started };
      }),
    );
    const slow = results.filter((r) => r.ms > 1000).length;
    const ok = results.filter((r) => r.status === 200).length;
    t.ok(slow <= 5, `${slow} of 30 requests waited on the hung dial`);
    t.ok(ok >= 25, `${ok} of 30 served`);
  });
}
