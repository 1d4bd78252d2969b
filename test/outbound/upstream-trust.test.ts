// An open upstream session carries requests only while the upstream's certificate path it was
// accepted on is within its dates. Node verifies the upstream at
// the handshake only, and a session lives up to its maximum age (10 min): before, requests went
// on over it to an upstream whose SVID had expired (its renewals failing), where a new
// connection is refused. Real mutual TLS upstream (HTTP/2), the real outbound, both codecs.

import t from 'tap';
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { startUpstream, startOutbound, makePki, UPSTREAM_ID, TD } from '../helpers/outbound-fixture.js';

/** One request through the outbound to `payments`, on a fresh app connection: its status, or the error. */
function get(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/x', headers: { host: 'payments' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => resolve(String(err)));
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an open session is not used past the upstream's certificate expiry`, async (t) => {
    const pki = await makePki(TD);
    // second-granular dates: 4.5 s is 4-5 s from now
    const leaf = await pki.issue(UPSTREAM_ID, { lifetimeMs: 4500 });
    const notAfterMs = Date.parse(new X509Certificate(leaf.certificatePem).validTo);
    const upstream = await startUpstream(pki, { leaf });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    t.equal(await get(fx.port), 200, 'before the expiry: served');
    t.equal(upstream.connections, 1, 'over one session');
    t.ok(Date.now() < notAfterMs - 1000, 'all well before the upstream certificate expires');
    while (Date.now() <= notAfterMs + 100) await new Promise((r) => setTimeout(r, 20));
    t.equal(await get(fx.port), 502, 'after it: refused, not served over the session opened before');
    t.equal(upstream.sessions.size, 0, 'the session opened before is gone');
    t.ok(upstream.connections >= 2, 'a new connection was tried (and refused for the expired certificate)');
  });

}
