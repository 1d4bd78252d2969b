// A JSON body's charset as every reader of the Content-Type's parameters reads it. The check
// took the first `charset=` a search found: `charset=utf-8; charset=iso-8859-1` (a parser that
// keeps the last, as Spring's and the npm content-type package's do, reads Latin-1, and Spring
// decodes the body so) and a `charset=utf-8` inside a quoted value both passed as UTF-8. Now
// every charset must be UTF-8 and a parameter list that does not parse is refused (415), over
// a real inbound in enforce mode (src/schema/media-charset.ts).

import t from 'tap';
import { resolve } from 'node:path';
import { onlyUtf8 } from '../../src/schema/media-charset.js';
import { mediaParameters } from '../../src/schema/media-syntax.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = resolve('config/orders.openapi.yaml');
const ORDER = JSON.stringify({ item: 'café', qty: 1 });

const PASSING = ['application/json', 'application/json;', 'application/json ;', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8', 'application/json; foo=bar', 'application/json; foo="a;b=c"; charset=utf-8', 'application/json; charset=utf-8;'];
const REFUSED = [
  'application/json; charset=utf-8; charset=iso-8859-1',
  'application/json; x="; charset=utf-8"; charset=iso-8859-1',
  'application/json; charset="utf-8\\"; charset=latin1"; charset=latin1',
  'application/json; charset=iso-8859-1',
  'application/json; charset=',
  'application/json; foo',
  'application/json; charset=utf-8 latin1',
];

/** As the check reads a Content-Type: its parameters parse, and every charset among them is UTF-8. */
function isUtf8Charset(contentType: string): boolean {
  const parameters = mediaParameters(contentType);
  return parameters !== undefined && onlyUtf8(parameters);
}

t.test('every charset is read, as RFC 9110 writes parameters', async (t) => {
  for (const type of PASSING) t.ok(isUtf8Charset(type), `${type}: UTF-8`);
  for (const type of REFUSED) t.notOk(isUtf8Charset(type), `${type}: not (only) UTF-8`);
});

t.test('over the inbound: a second charset or a quoted one is 415', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024 });
  const post = (type: string) => h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: { 'content-type': type, 'idempotency-key': 'idem-0001' }, body: ORDER });
  t.equal((await post('application/json; charset=utf-8')).status, 200, 'UTF-8 passes');
  for (const type of REFUSED.slice(0, 2)) {
    const res = await post(type);
    t.equal(res.status, 415, `${type}: 415`);
    t.equal(JSON.parse(res.body).message, 'content_type: a JSON body must be UTF-8 (charset=utf-8, or no charset)');
  }
});
