// A request path the inbound refuses (400 bad_request) is told what is wrong with it: a path
// holding an encoded control character (%0A, %00, also encoded twice) was told about dot
// segments, ;params and fragments, none of which it held, so its sender looked for the wrong
// thing. Real inbound over mutual TLS, raw paths through node:https.

import t from 'tap';
import { FRONTEND_ID, h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

t.test('each refused path is told its own problem', async (t) => {
  const fx = await startInbound({});
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions(FRONTEND_ID);
  const refused = async (path: string) => {
    const res = await h1Request(fx.port, tlsOptions, { path });
    return { status: res.status, ...(JSON.parse(res.body) as { error: string; message: string }) };
  };
  const cases: Array<[string, RegExp]> = [
    ['/orders/%0Aadmin', /control character %0A \(LF\)/],
    ['/orders/%00', /control character %00 \(NUL\)/],
    ['/orders/%250d', /control character %0D \(CR\).*decoded twice/],
    ['/orders/%zz', /% not followed by two hex digits/],
    ['/orders/%2e%2e/admin', /dot segment/],
    ['/orders/%252e/x', /double-encoded/],
    ['/orders/%c0%ae%c0%ae/x', /overlong UTF-8/],
    ['//orders/x', /empty first segment/],
    // in the query too: an app reading a URL drops it and the rest of the query
    ['/orders?q=1#x&admin=1', /holds a #/],
  ];
  for (const [path, told] of cases) {
    const answer = await refused(path);
    t.equal(answer.status, 400, `${path}: 400`);
    t.equal(answer.error, 'bad_request');
    t.match(answer.message, told, `${path}: ${answer.message}`);
  }
  t.notMatch((await refused('/orders/%0A')).message, /dot segment/, 'a control character is not told as a dot segment');
});

// an HTTP/2 :path in absolute form (under a :scheme other than http(s), which the codecs leave to
// the inbound) is told it does not start with /: it was told it carried a
// fragment (#), the HTTP/1.1 absolute-form message, though it held none (a review)
t.test('an HTTP/2 :path in absolute form is told what is wrong with it', async (t) => {
  const fx = await startInbound({});
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  const res = await h2Request(session, { ':method': 'GET', ':scheme': 'foo', ':path': 'http://orders/public/x', ':authority': 'orders' });
  const answer = JSON.parse(res.body.toString()) as { error: string; message: string };
  t.equal(res.status, 400);
  t.equal(answer.error, 'bad_request');
  t.match(answer.message, /plain absolute path: it does not start with \//, answer.message);
  t.notMatch(answer.message, /fragment/);
});
