// An h2c app session that cannot even begin: http2.connect throws at once (Invalid URL) for an
// address its URL cannot hold, here an IPv6 zone (`[::1%lo]`). Such an app address passed
// `meshcar check` before the config refused zones (test/config/address-spellings.test.ts); the
// throw went past the request, uncaught, and the first request killed the sidecar. An inbound
// built with such an address (a config object that never met the reader) answers each request
// 502 bad_gateway with the JSON error body, both caller protocols, and keeps serving.

import t from 'tap';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

t.test('a synchronous connect failure is the request\'s 502, not the process\'s end', async (t) => {
  const fx = await startInbound({ externalApp: { protocol: 'h2c', host: '::1%lo', port: 9 } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  for (const id of ['zone-1', 'zone-2']) {
    const res = await h1Request(fx.port, tlsOptions, { headers: { 'x-request-id': id } });
    t.equal(res.status, 502);
    t.equal(res.headers['x-meshcar-error'], 'bad_gateway');
    t.same(JSON.parse(res.body), { error: 'bad_gateway', message: "the sidecar cannot open a connection to the app (ERR_INVALID_URL): see this sidecar's inbound.app", requestId: id });
  }
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const h2 = await h2Request(session, { ':path': '/' });
  t.equal(h2.status, 502);
  t.equal(h2.headers['x-meshcar-error'], 'bad_gateway');
  const records = await fx.observer.waitForRequests(3);
  t.same(records.map((r) => [r.status, r.errorCode]), [[502, 'bad_gateway'], [502, 'bad_gateway'], [502, 'bad_gateway']]);
});
