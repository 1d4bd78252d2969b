// The app's authority (Host, or an absolute-form target's) is checked before routing, on
// requests, Upgrades and h2c alike: routing reads only the name before the last ':', so an
// authority such as `payments:1/../x` or `payments:abc` would otherwise route to payments and
// go upstream as it is, to be refused by the peer (a reset held against the endpoint) or read
// by its app as it likes. Refused locally: 400 bad_request with our JSON body, nothing sent.

import t from 'tap';
import http2 from 'node:http2';
import { rawTcpRequest } from '../helpers/raw-http.js';
import { h2cRequest, request, startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { routableAuthorityProblem } from '../../src/outbound/router.js';

t.test('authorities refused before routing', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const refused = [
    ['Host with a path', 'GET /echo HTTP/1.1\r\nHost: payments:1/../x\r\n\r\n'],
    ['Host with a non-numeric port', 'GET /echo HTTP/1.1\r\nHost: payments:abc\r\n\r\n'],
    ['Host with userinfo-like @', 'GET /echo HTTP/1.1\r\nHost: payments:80@evil.example\r\n\r\n'],
    ['Host with two ports', 'GET /echo HTTP/1.1\r\nHost: payments:1:2\r\n\r\n'],
    ['absolute-form with a non-numeric port', 'GET http://payments:{x}/echo HTTP/1.1\r\nHost: payments\r\n\r\n'],
    // routed by the name after the @ while the same authority in Host is refused (RFC 9110 §4.2.4)
    ['absolute-form with userinfo', 'GET http://nosuch:80@payments/echo HTTP/1.1\r\nHost: nosuch\r\n\r\n'],
    // RFC 9110 §4.2.1: an http URI with an empty host is invalid (was routed by Host's empty name: 404)
    ['absolute-form naming no host', 'GET http:///echo HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['Upgrade in absolute-form naming no host', 'GET http:///ws HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['absolute-form with a password', 'GET http://u:secret@payments/echo HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['Upgrade in absolute-form with userinfo', 'GET http://u@payments/ws HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['Upgrade with a path in Host', 'GET /ws HTTP/1.1\r\nHost: payments:1/../x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['Upgrade with a non-numeric port', 'GET /ws HTTP/1.1\r\nHost: payments:abc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
  ] as const;
  for (const [name, bytes] of refused) {
    const res = await rawTcpRequest(fx.port, bytes);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers['x-meshcar-error'], 'bad_request', `${name}: bad_request`);
    t.equal(JSON.parse(res.body).error, 'bad_request', `${name}: JSON body`);
    t.notMatch(res.body, /secret/, `${name}: a password is not quoted back`);
  }
  t.equal(upstream.requests, 0, 'nothing went upstream');

  const ok = await request(fx.port, { headers: { host: 'payments:8080' } });
  t.equal(ok.status, 200, 'a numeric port still routes');
  const empty = await request(fx.port, { headers: { host: 'payments:' } });
  t.equal(empty.status, 200, 'an empty port is allowed (RFC 3986 port = *DIGIT)');

  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const h2 = await h2cRequest(session, { ':path': '/echo', ':authority': 'payments:abc' });
  t.equal(h2.status, 400, 'h2c: the same check on :authority');
  t.equal(upstream.requests, 2, 'only the good requests went upstream');
});

// From the review: `[a]`, `[a]:80`, `[A.]:0` (brackets stripped without a look inside) and
// `a:99999` (any five digits) routed to upstream a and went on verbatim: its app was sent
// Host: [a]:80. Now the same grammar as the inbound's (src/http/authority.ts).
t.test('brackets hold an IPv6 address, a port is 1-65535', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
  const refused = [
    ['Host: [payments]', 'GET /echo HTTP/1.1\r\nHost: [payments]\r\n\r\n', /"payments" in brackets is not an IPv6 address/],
    ['Host: [payments]:80', 'GET /echo HTTP/1.1\r\nHost: [payments]:80\r\n\r\n', /"payments" in brackets is not an IPv6 address/],
    ['Host: [PAYMENTS.]:0', 'GET /echo HTTP/1.1\r\nHost: [PAYMENTS.]:0\r\n\r\n', /not an IPv6 address/],
    ['Host: payments:99999', 'GET /echo HTTP/1.1\r\nHost: payments:99999\r\n\r\n', /port 99999 is not one of 1-65535/],
    ['Host: payments:0', 'GET /echo HTTP/1.1\r\nHost: payments:0\r\n\r\n', /port 0 is not one of 1-65535/],
    ['Host: [::1%25lo]:80', 'GET /echo HTTP/1.1\r\nHost: [::1%25lo]:80\r\n\r\n', /zone id/],
    ['absolute-form http://[payments]/echo', 'GET http://[payments]/echo HTTP/1.1\r\nHost: payments\r\n\r\n', /not an IPv6 address/],
    ['absolute-form http://[payments]:80/echo', 'GET http://[payments]:80/echo HTTP/1.1\r\nHost: payments\r\n\r\n', /not an IPv6 address/],
    ['absolute-form http://payments:65536/echo', 'GET http://payments:65536/echo HTTP/1.1\r\nHost: payments\r\n\r\n', /port 65536/],
    ['Upgrade with Host: [payments]', `GET /ws HTTP/1.1\r\nHost: [payments]\r\n${upgrade}\r\n`, /not an IPv6 address/],
  ] as const;
  for (const [name, bytes, reason] of refused) {
    const res = await rawTcpRequest(fx.port, bytes);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers['x-meshcar-error'], 'bad_request', `${name}: bad_request`);
    const body = JSON.parse(res.body) as { error: string; message: string };
    t.equal(body.error, 'bad_request', `${name}: JSON body`);
    t.match(body.message, /is not a host with an optional numeric port: /, `${name}: the README's words`);
    t.match(body.message, reason, `${name}: the reason`);
  }
  t.equal(upstream.requests, 0, 'nothing went upstream');

  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  for (const authority of ['[payments]:80', 'payments:99999', '::1:80']) {
    const h2 = await h2cRequest(session, { ':path': '/echo', ':authority': authority });
    t.equal(h2.status, 400, `h2c :authority ${authority}: 400`);
  }
  t.equal(upstream.requests, 0, 'nothing went upstream over h2c either');

  // real hosts still route (or, not naming an upstream, get no_route, not bad_request)
  t.equal((await request(fx.port, { headers: { host: 'payments:65535' } })).status, 200, 'the highest port');
  t.equal((await request(fx.port, { headers: { host: 'Payments.:1' } })).status, 200, 'a trailing root dot and port 1');
  t.equal((await request(fx.port, { headers: { host: '[::1]:8080' } })).status, 404, '[::1]:8080 is well formed: no_route');
  t.equal((await h2cRequest(session, { ':path': '/echo', ':authority': 'payments:443' })).status, 200, 'h2c with a port');
  t.equal(upstream.requests, 3, 'the good requests went upstream');
});

t.test('routableAuthorityProblem', async (t) => {
  for (const good of ['payments', 'payments:80', 'payments:', '[::1]:443', '[::1]', '127.0.0.1:9', 'a.b.c']) t.equal(routableAuthorityProblem(good), undefined, good);
  for (const bad of ['payments:abc', 'payments:1:2', 'a/b', 'a@b', '[::1]x', '[::1]:8x', 'a]b:1', 'a b', 'payments:123456', '[payments]', '[payments]:80', 'payments:99999', 'payments:0', '::1:80', '[]', '[::1%25eth0]']) t.type(routableAuthorityProblem(bad), 'string', bad);
});
