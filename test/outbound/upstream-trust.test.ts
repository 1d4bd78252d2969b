// An open upstream session carries requests only while the upstream's certificate path it was
// accepted on is within its dates and chains to our trust bundle. Node verifies the upstream at
// the handshake only, and a session lives up to its maximum age (10 min): before, requests went
// on over it to an upstream whose SVID had expired (its renewals failing), and to one whose root
// had left our bundle (a rotation's retire step, an operator's new bundle file), where a new
// connection is refused. Real mutual TLS upstream (HTTP/2), the real outbound, both codecs.

import t from 'tap';
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { startUpstream, startOutbound, makePki, waitUntil, APP_ID, UPSTREAM_ID, TD } from '../helpers/outbound-fixture.js';
import { openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

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

  t.test(`${codec} codec: a bundle change cuts the sessions to upstreams it no longer vouches for, and only those`, async (t) => {
    const a = await makePki(TD);
    const b = await makePki(TD);
    const c = await makePki(TD);
    // the upstream's certificate is under root A; ours under B; we trust both, the upstream too
    const upstream = await startUpstream(a, {});
    upstream.server.setSecureContext({ key: upstream.leaf.privateKeyPem, cert: upstream.leaf.chainPem, ca: a.bundlePem + b.bundlePem });
    const own = await b.issue(APP_ID);
    const identity = new WorkloadIdentity(validateSvid({ ...own, bundlePem: a.bundlePem + b.bundlePem }, APP_ID), pino({ level: 'silent' }));
    const fx = await startOutbound(a, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec }, identity);
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    t.equal(await get(fx.port), 200, 'served under A and B');

    // the control: a root added keeps the session (A still vouches for the upstream)
    identity.swap(validateSvid({ ...own, bundlePem: a.bundlePem + b.bundlePem + c.bundlePem }, APP_ID));
    t.equal(await get(fx.port), 200, 'a root added: still served');
    t.equal(upstream.connections, 1, 'over the same session');

    // A leaves the bundle: the upstream chains to nothing we trust
    identity.swap(validateSvid({ ...own, bundlePem: b.bundlePem + c.bundlePem }, APP_ID));
    await waitUntil(() => upstream.sessions.size === 0, 'the session to the upstream under the removed root closed');
    t.equal(await get(fx.port), 502, 'refused, as a new connection is');
  });
}

t.test("a WebSocket tunnel is cut at its upstream's certificate expiry", async (t) => {
  // the far sidecar's certificate lasts 3.5 s (second-granular: 3-4 s); its app answers 101 and keeps the tunnel
  const pair = await startTunnelPair(
    (socket) => {
      socket.write(SWITCHING);
      socket.resume();
    },
    { serverLifetimeMs: 3500 },
  );
  t.teardown(() => pair.close());
  const notAfterMs = pair.inbound.identity.current().notAfter.getTime();
  const tunnel = await openTunnel(pair.outbound.port);
  t.ok(Date.now() < notAfterMs, 'the tunnel opened before the far certificate expires');
  const closedAt = await Promise.race([tunnel.closed.then(() => Date.now()), new Promise<undefined>((r) => setTimeout(r, notAfterMs - Date.now() + 3000).unref())]);
  t.ok(closedAt !== undefined && closedAt >= notAfterMs - 50, `the calling app's tunnel closed at the expiry (${closedAt === undefined ? 'not within 3 s of it' : `${closedAt - notAfterMs} ms after`})`);
});
