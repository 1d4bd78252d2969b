// An endpoint whose TLS handshake failed on its certificate chain is not dialled again before
// its backoff ends, even as an upstream's only endpoint. Checking a chain costs the caller every
// signature in it, with the endpoint's keys: a hostile endpoint's chain can cost a dial hundreds
// of ms of CPU, and the only endpoint of an upstream was dialled again for every request (the
// attacker review: 245 ms of outbound CPU per dial, 76 % of a core at 20 requests a second). The
// requests meanwhile get the refused dial's answer at once (502 upstream_identity_mismatch here),
// naming the refused handshake and when the next dial comes.
// Real sockets, real mTLS: the endpoint presents an SVID of another CA; both codecs.

import t from 'tap';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a single endpoint whose chain was refused is dialled once per backoff`, async (t) => {
    const pki = await makePki(TD);
    const foreign = await makePki('other.test');
    const stranger = await startUpstream(pki, { leaf: await foreign.issue(`spiffe://${TD}/svc/payments`) });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${stranger.port}`] }], { endpointBackoffMs: 1_500, codec });
    t.teardown(async () => {
      await fx.close();
      await stranger.close();
    });
    const first = await request(fx.port);
    t.equal(first.status, 502, 'the first request: 502');
    t.match(first.body, /"error":"upstream_identity_mismatch".*presented a certificate we cannot trust/, `naming the refused chain (${first.body.slice(0, 160)})`);
    const startedAt = performance.now();
    const next = [];
    for (let i = 0; i < 10; i++) next.push(await request(fx.port));
    t.equal(stranger.connections, 1, 'ten more requests within the backoff: no new dial');
    t.ok(
      next.every((r) => r.status === 502 && /"error":"upstream_identity_mismatch".*cannot trust.*\(at its last dial: no endpoint of upstream payments is dialled again for \d+ ms/.test(r.body)),
      `each answered the same at once, saying why and for how long (${next[0]?.body.slice(0, 260)})`,
    );
    while (stranger.connections < 2 && performance.now() - startedAt < 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await request(fx.port);
    }
    t.equal(stranger.connections, 2, 'dialled again once the backoff is over');
    t.ok(performance.now() - startedAt >= 1_300, `after about the backoff (${Math.round(performance.now() - startedAt)} ms)`);
  });
}
