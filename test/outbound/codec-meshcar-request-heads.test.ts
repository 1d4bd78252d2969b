// The request heads the outbound sends upstream. A head above the upstream's
// SETTINGS_MAX_HEADER_LIST_SIZE is refused before it is sent (src/h2's request() throws
// ERR_H2_HEADER_LIST_TOO_LARGE; on http2.codec node, head-limits.ts's refuseOverPeerList, where
// Node's client sent it and the reset was a 502 after two retries, each on a new session) and
// the app gets 431 headers_too_large as JSON. Sent, the
// upstream would refuse it, some peers by ending the connection with every request on it: here
// a request in flight on the same session and the ones after it are answered, on one session.
// The upstream is Node's http2 (nghttp2) over mutual TLS, advertising a 2 KiB header list.
// Credentials (cookies of any length, API and auth tokens) go upstream as never-indexed
// literals (src/http/sensitive-headers.ts): the session is shared by every app request, so they
// stay out of its HPACK table. Node lists the fields it received so under http2.sensitiveHeaders.

import t from 'tap';
import http2 from 'node:http2';
import { defaultHandler, makePki, request, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';

for (const codec of ['meshcar', 'node'] as const) {
t.test(`codec ${codec}: a request head over the upstream header list size: 431 to the app, the shared session lives on`, async (t) => {
  const pki = await makePki('mesh.test');
  const upstream = await startUpstream(pki, { settings: { maxHeaderListSize: 2048 } });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });

  const oversized = { path: '/echo', headers: { 'x-big': 'b'.repeat(3000) } };
  // the first request dials the session (the pool's slow path)
  const first = await request(fx.port, oversized);
  t.equal(first.status, 431, 'refused with 431 on a new session');
  // then one in flight on the session while another oversized one is refused (the fast path)
  const slow = request(fx.port, { path: '/slow/300' });
  while (upstream.requests < 1) await new Promise((r) => setTimeout(r, 5));
  const big = await request(fx.port, oversized);
  t.equal(big.status, 431, 'refused with 431 on the open session');
  t.equal(big.headers['x-meshcar-error'], 'headers_too_large', 'the stable code in the header');
  t.match(big.json<{ error: string; message: string }>(), { error: 'headers_too_large', message: /over what the upstream accepts/ }, 'and the JSON body');

  t.equal((await request(fx.port, { path: '/echo' })).status, 200, 'the next request is answered');
  t.equal((await slow).status, 200, 'the request in flight is answered');
  t.equal(upstream.requests, 2, 'the oversized head never reached the upstream');
  t.equal(upstream.connections, 1, 'all on one session');
});

// Another endpoint may take a head one refuses (a peer announcing a tiny limit would otherwise
// have every request routed to it answered 431, blamed on the app: hostile-endpoint.test.ts);
// a head over every endpoint's limit is 431 once each has refused it, and nothing is sent.
t.test(`codec ${codec}: a head over every endpoint's limit: 431 once each refused it, nothing sent`, async (t) => {
  const pki = await makePki('mesh.test');
  const ups = [await startUpstream(pki, { settings: { maxHeaderListSize: 2048 } }), await startUpstream(pki, { settings: { maxHeaderListSize: 2048 } })];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ups.map((u) => `127.0.0.1:${u.port}`) }], { codec });
  t.teardown(async () => {
    await fx.close();
    await Promise.all(ups.map((u) => u.close()));
  });
  t.equal((await request(fx.port, { path: '/echo', headers: { 'x-big': 'b'.repeat(3000) } })).status, 431);
  t.equal(ups[0]!.connections + ups[1]!.connections, 2, 'both endpoints tried, once each');
  t.equal(ups[0]!.requests + ups[1]!.requests, 0, 'the head reached neither');
  t.equal((await request(fx.port, { path: '/echo' })).status, 200, 'a head within the limits is answered');
});
}

t.test('credentials go upstream never-indexed, on every request of the shared session', async (t) => {
  const pki = await makePki('mesh.test');
  const seen: string[][] = [];
  const upstream = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      seen.push((headers as Record<symbol, string[]>)[http2.sensitiveHeaders] ?? []);
      defaultHandler(stream, headers, flags);
    },
  });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec: 'meshcar' });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const headers = { 'x-api-key': 'key-123', 'x-auth-token': 'tok-456', cookie: 'session=0123456789abcdef0123456789abcdef', 'x-plain': 'visible' };
  for (let i = 0; i < 2; i++) t.equal((await request(fx.port, { path: '/echo', headers })).status, 200);
  t.equal(upstream.connections, 1, 'one shared session');
  for (const [i, names] of seen.entries()) {
    t.ok(['x-api-key', 'x-auth-token', 'cookie'].every((n) => names.includes(n)), `request ${i + 1}: x-api-key, x-auth-token and the long cookie never indexed (${names.join(', ')})`);
    t.notOk(names.includes('x-plain'), `request ${i + 1}: other fields indexed as before`);
  }
});
