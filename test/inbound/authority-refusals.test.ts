// A caller's :authority or Host must be a host with an optional port (src/http/authority.ts):
// from the review, `[]`, `::1:80`, `[::1]:99999` and `[::1%25eth0]` reached the app unchanged
// over HTTP/2, the old check being one of characters alone. Refused with 400 bad_request and
// the JSON body, on both HTTP/2 codecs and on HTTP/1.1's Host, nothing sent to the app; real
// hosts (names, IPv4, [::1], [::1]:8080, a trailing root dot) still reach it. Real inbound over
// mutual TLS, node:http2 and node:https as the callers.

import t from 'tap';
import type { Http1Handler } from '../helpers/inbound-fixture.js';
import { echoHandler, FRONTEND_ID, h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const MALFORMED: Array<[string, RegExp]> = [
  ['[]', /"" in brackets is not an IPv6 address/],
  ['::1:80', /more than one :/],
  ['[::1]:99999', /port 99999 is not one of 1-65535/],
  ['[::1%25eth0]', /zone id/],
  ['[orders]:80', /"orders" in brackets is not an IPv6 address/],
  ['orders:0', /port 0 is not one of 1-65535/],
];
const WELL_FORMED = ['orders', 'orders.', 'ORDERS:8443', '127.0.0.1:8443', '[::1]', '[::1]:8080'];

/** An inbound whose app counts what reaches it. */
async function countingInbound(t: Tap.Test, codec?: 'meshcar' | 'node') {
  const seen: string[] = [];
  const handler: Http1Handler = (req, res) => {
    seen.push(String(req.headers.host));
    echoHandler(req, res);
  };
  const fx = await startInbound({ app: { protocol: 'http', handler }, ...(codec ? { codec } : {}) });
  t.teardown(() => fx.close());
  return { fx, seen, tlsOptions: await fx.tlsOptions(FRONTEND_ID) };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`HTTP/2 :authority, codec ${codec}`, async (t) => {
    const { fx, seen, tlsOptions } = await countingInbound(t, codec);
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    for (const [authority, reason] of MALFORMED) {
      const res = await h2Request(session, { ':path': '/x', ':authority': authority });
      t.equal(res.status, 400, `${authority}: 400`);
      t.equal(res.headers['x-meshcar-error'], 'bad_request', `${authority}: bad_request`);
      const body = JSON.parse(res.body.toString()) as { error: string; message: string };
      t.equal(body.error, 'bad_request', `${authority}: JSON body`);
      t.match(body.message, reason, `${authority}: ${body.message}`);
    }
    t.same(seen, [], 'nothing reached the app');
    for (const authority of WELL_FORMED) {
      const res = await h2Request(session, { ':path': '/x', ':authority': authority });
      t.equal(res.status, 200, `${authority}: passed on`);
    }
    t.same(seen, WELL_FORMED, 'the app got each real host as sent');
  });
}

t.test('HTTP/1.1 Host', async (t) => {
  const { fx, seen, tlsOptions } = await countingInbound(t);
  for (const [host, reason] of MALFORMED) {
    const res = await h1Request(fx.port, tlsOptions, { path: '/x', headers: { host } });
    t.equal(res.status, 400, `${host}: 400`);
    t.equal(res.headers['x-meshcar-error'], 'bad_request', `${host}: bad_request`);
    const body = JSON.parse(res.body) as { error: string; message: string };
    t.equal(body.error, 'bad_request', `${host}: JSON body`);
    t.match(body.message, reason, `${host}: ${body.message}`);
  }
  t.same(seen, [], 'nothing reached the app');
  for (const host of WELL_FORMED) t.equal((await h1Request(fx.port, tlsOptions, { path: '/x', headers: { host } })).status, 200, `${host}: passed on`);
  t.same(seen, WELL_FORMED, 'the app got each real host as sent');
});

// RFC 9113 §8.3.1: Host and :authority are compared after RFC 3986 §6.2.3's normalization (from
// the review of this grammar: `orders:443` beside `Host: orders` was a 400 "differ"); and a
// request that names no site at all is a 400, never passed on with a Host the app client made up
for (const codec of ['meshcar', 'node'] as const) {
  t.test(`HTTP/2 Host beside :authority, codec ${codec}: one site after normalization`, async (t) => {
    const { fx, seen, tlsOptions } = await countingInbound(t, codec);
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    for (const [authority, host] of [['orders:443', 'orders'], ['orders', 'ORDERS:443'], ['orders:', 'orders']]) {
      const res = await h2Request(session, { ':path': '/x', ':authority': authority, host });
      t.equal(res.status, 200, `:authority ${authority}, Host ${host}: passed on`);
    }
    t.equal(seen.length, 3, 'each reached the app');
    const other = await h2Request(session, { ':path': '/x', ':authority': 'orders:8443', host: 'orders' });
    t.equal(other.status, 400, 'another port is another site: 400');
  });
}

t.test('HTTP/2 with an empty :authority and no Host, codec meshcar: 400, nothing passed on', async (t) => {
  const { fx, seen, tlsOptions } = await countingInbound(t, 'meshcar');
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const res = await h2Request(session, { ':path': '/x', ':authority': '' });
  t.equal(res.status, 400, '400');
  t.match(JSON.parse(res.body.toString()), { error: 'bad_request', message: /names no host/ }, 'the JSON body says why');
  t.same(seen, [], 'nothing reached the app');
});
