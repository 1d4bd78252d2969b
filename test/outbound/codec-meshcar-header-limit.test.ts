// http2.codec meshcar on the outbound: a request head above the upstream's
// SETTINGS_MAX_HEADER_LIST_SIZE is refused before it is sent (src/h2's request() throws
// ERR_H2_HEADER_LIST_TOO_LARGE) and the app gets 431 headers_too_large as JSON. Sent, the
// upstream would refuse it, some peers by ending the connection with every request on it: here
// a request in flight on the same session and the ones after it are answered, on one session.
// The upstream is Node's http2 (nghttp2) over mutual TLS, advertising a 2 KiB header list.

import t from 'tap';
import { makePki, request, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';

t.test('a request head over the upstream header list size: 431 to the app, the shared session lives on', async (t) => {
  const pki = await makePki('mesh.test');
  const upstream = await startUpstream(pki, { settings: { maxHeaderListSize: 2048 } });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec: 'meshcar' });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });

  // in flight on the session while the oversized one is refused
  const slow = request(fx.port, { path: '/slow/300' });
  while (upstream.requests < 1) await new Promise((r) => setTimeout(r, 5));
  const big = await request(fx.port, { path: '/echo', headers: { 'x-big': 'b'.repeat(3000) } });
  t.equal(big.status, 431, 'refused with 431');
  t.equal(big.headers['x-meshcar-error'], 'headers_too_large', 'the stable code in the header');
  t.match(big.json<{ error: string; message: string }>(), { error: 'headers_too_large', message: /over what the upstream accepts/ }, 'and the JSON body');

  t.equal((await request(fx.port, { path: '/echo' })).status, 200, 'the next request is answered');
  t.equal((await slow).status, 200, 'the request in flight is answered');
  t.equal(upstream.requests, 2, 'the oversized head never reached the upstream');
  t.equal(upstream.connections, 1, 'all on one session');
});
