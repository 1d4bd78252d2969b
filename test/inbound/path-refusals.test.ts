// A request path the inbound refuses (400 bad_request) is told what is wrong with it: a path
// holding an encoded control character (%0A, %00, also encoded twice) was told about dot
// segments, ;params and fragments, none of which it held, so its sender looked for the wrong
// thing. Real inbound over mutual TLS, raw paths through node:https.

import t from 'tap';
import { FRONTEND_ID, h1Request, startInbound } from '../helpers/inbound-fixture.js';

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
