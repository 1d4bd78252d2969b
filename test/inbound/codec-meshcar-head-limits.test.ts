// http2.codec meshcar, server role: a request head over the inbound's limits (here 400 small
// fields, under the byte limit but over the 256-field one) is answered 431 the way the sidecar
// answers every error: x-meshcar-error headers_too_large and the JSON body, not a bare 431
// with an empty body. A request whose body was still to come is then ended with
// RST_STREAM(NO_ERROR), and the connection keeps serving.

import t from 'tap';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const MANY: Record<string, string> = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`h${i}`, 'v']));

t.test('a head with too many fields: 431 headers_too_large with the JSON error body', async (t) => {
  const fx = await startInbound({ codec: 'meshcar' });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.destroy());

  const res = await h2Request(session, { ':method': 'GET', ':path': '/x', ...MANY });
  t.equal(res.status, 431);
  t.equal(res.headers['x-meshcar-error'], 'headers_too_large', 'the sidecar says it answered');
  t.equal(res.headers['content-type'], 'application/json');
  const body = JSON.parse(res.body.toString()) as { error: string; message: string };
  t.equal(body.error, 'headers_too_large', 'the JSON error body');
  t.match(body.message, /maxHeaderListSize/, 'naming the setting');
  t.equal(Number(res.headers['content-length']), res.body.length, 'its length as announced');

  // with a body to come: the same answer, then the stream ends without error
  const post = await h2Request(session, { ':method': 'POST', ':path': '/x', ...MANY }, 'a body');
  t.equal(post.status, 431);
  t.equal(JSON.parse(post.body.toString()).error, 'headers_too_large');
  t.equal(post.rstCode, 0, 'the stream ends with NO_ERROR');

  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/ok' })).status, 200, 'the connection keeps serving');
});
