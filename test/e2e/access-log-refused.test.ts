// The access log and requests the HTTP/1.1 parser refuses: the sidecar answers them itself
// (431 for a head over the limit, 400 for one that is not HTTP/1.1) and they reach no upstream
// or app, but the app or caller did get that answer, so the sidecar that gave it writes a line:
// status, error, the caller (inbound) and the error body's bytes; no method or path was read.
// They wrote nothing, at any level but debug, so an app getting 431s found no trace of them.
// A request target of another scheme (ftp://user:password@host/) is refused too, after its
// head was read: its line writes the target without the userinfo.

import t from 'tap';
import { startSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import { rawTcpRequest, rawTlsRequest } from '../helpers/raw-http.js';

const mesh = meshFixture(t);

t.test('a refused head: one access line on the sidecar that answered it', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, access: true });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], access: true });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));

  // the app's head over the outbound's 16 KiB
  const big = await rawTcpRequest(frontend.outboundPort, `GET /x HTTP/1.1\r\nHost: orders\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.equal(big.status, 431);
  const outbound = await frontend.process.waitFor((l) => l.component === 'access' && l.status === 431, 5000);
  t.match(outbound, { direction: 'outbound', peer: 'unknown', status: 431, error: 'headers_too_large', bytesIn: 0, bytesOut: big.body.length });
  t.notOk('method' in outbound || 'path' in outbound, 'no method or path was read');

  // a caller with a real SVID speaking broken HTTP/1.1 to the inbound
  const svid = await mesh.ca.issue('frontend');
  const bad = await rawTlsRequest(orders.inboundPort, { cert: svid.cert, key: svid.key, ca: svid.bundle, servername: 'orders', checkServerIdentity: () => undefined }, 'GET / HTTP/1.1\r\nHost: orders\r\nBad Header\r\n\r\n');
  t.equal(bad.status, 400);
  const inbound = await orders.process.waitFor((l) => l.component === 'access' && l.status === 400, 5000);
  t.match(inbound, { direction: 'inbound', peer: 'frontend', status: 400, error: 'bad_request', bytesOut: bad.body.length });
  t.equal(orders.process.lines.filter((l) => l.component === 'access').length, 1, 'the inbound wrote only that one');

  // a target that is no path nor http(s) URI is refused as such; its password is not logged
  const ftp = await rawTcpRequest(frontend.outboundPort, 'GET ftp://user:hunter2@orders/x?q=1 HTTP/1.1\r\nHost: orders\r\n\r\n');
  t.equal(ftp.status, 400);
  const refused = await frontend.process.waitFor((l) => l.component === 'access' && String(l.path).startsWith('ftp:'), 5000);
  t.match(refused, { status: 400, error: 'bad_request', path: 'ftp://orders/x' }, 'the target without its userinfo and query');
  t.notMatch(JSON.stringify(frontend.process.lines), /hunter2/, 'the password in no line');
});
