// An upstream of six endpoints, five of which present certificates our chain check refuses
// (no serverAuth) and one a good one: the first request of a fresh outbound is answered by the
// good one. The failover of one attempt dials three endpoints at most; a request whose three
// were all refused ended at 502 upstream_identity_mismatch with a healthy endpoint left untried
// (identity failures were not retried as connect failures; a review found it for the refusals
// 43897d31 moved from 503 to 502, and it held for untrusted chains before). Retried now while
// the upstream has more endpoints than the failover tries; a single wrong endpoint is not (mtls.test.ts).

import t from 'tap';
import { makePki, request, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

t.test('five refused endpoints and a good one: every first request reaches the good one', async (t) => {
  const pki = await makePki(TD);
  const good = await startUpstream(pki);
  const badLeaf = await pki.issueWithUris([UPSTREAM_ID], { extKeyUsage: { clientAuth: true } });
  const bad = await Promise.all(Array.from({ length: 5 }, () => startUpstream(pki, { leaf: badLeaf })));
  t.teardown(async () => {
    await good.close();
    for (const b of bad) await b.close();
  });
  const endpoints = [...bad, good].map((u) => `127.0.0.1:${u.port}`);
  const statuses: number[] = [];
  // a fresh outbound each time: no endpoint has a failure on record, the picks are the balancer's
  // own (without the retry, half of these first requests ended at 502)
  for (let i = 0; i < 8; i++) {
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints }]);
    const res = await request(fx.port);
    statuses.push(res.status);
    await fx.close();
  }
  t.same(statuses, Array(8).fill(200), `first requests: ${statuses.join(' ')}`);
  t.equal(bad.reduce((sum, b) => sum + b.requests, 0), 0, 'no request reached a refused endpoint');
});
