// Header rules on both sides: outgoing objects become flat lists with pseudo-headers first and
// names lower-cased, refusing what HTTP/2 cannot carry; incoming lists are checked against
// RFC 9113 §8.2–8.3 and joined as Node joins duplicates.

import t from 'tap';
import { HeadKind, flattenHeaders, parseHead } from '../../src/h2/headers.js';

t.test('outgoing headers', async (t) => {
  t.same(flattenHeaders({ 'Content-Type': 'text/plain', ':status': 200, 'set-cookie': ['a=1', 'b=2'], skipped: undefined }), [':status', '200', 'content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2'], 'pseudo first, lower case, arrays repeated, undefined skipped');
  t.throws(() => flattenHeaders({ ':status': 200, connection: 'close' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ ':status': 200, 'Transfer-Encoding': 'chunked' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ ':path': '/a\r\nx: y' }), { code: 'ERR_H2_INVALID_HEADER' }, 'CR LF in a pseudo-header value');
  t.throws(() => flattenHeaders({ 'x-a': ' leading space' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ 'bad name': 'v' }), { code: 'ERR_H2_INVALID_HEADER' });
  t.throws(() => flattenHeaders({ 'x-a': 'snow ☃' }), { code: 'ERR_H2_INVALID_HEADER' }, 'a character HPACK cannot carry is refused before encoding');
  t.same(flattenHeaders({ 'x-a': 'caf\u00e9' }), ['x-a', 'caf\u00e9'], 'latin1 is fine');
});

t.test('incoming headers', async (t) => {
  const ok = parseHead([':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'x', 'cookie', 'a=1', 'cookie', 'b=2', 'x-a', '1', 'x-a', '2', 'set-cookie', 's'], HeadKind.Request);
  t.match(ok, { headers: { cookie: 'a=1; b=2', 'x-a': '1, 2', 'set-cookie': ['s'] }, contentLength: -1 });
  t.equal(Object.getPrototypeOf((ok as { headers: object }).headers), null, 'a null-prototype object: no __proto__ tricks');
  const req = (extra: string[]) => parseHead([':method', 'GET', ':scheme', 'https', ':path', '/', ...extra], HeadKind.Request);
  t.type(req(['content-length', '5', 'content-length', '6']), 'string', 'conflicting content-length');
  t.match(req(['content-length', '5', 'content-length', '5']), { contentLength: 5 }, 'repeated equal content-length');
  t.type(req(['content-length', '-1']), 'string');
  t.type(req(['x', 'a\u0000b']), 'string', 'NUL in a value');
  t.type(req(['te', 'gzip']), 'string');
  t.match(req(['te', 'trailers']), { headers: { te: 'trailers' } });
  t.type(parseHead([':method', 'CONNECT', ':authority', 'x:443'], HeadKind.Request), 'object', 'CONNECT with :authority only');
  t.type(parseHead([':method', 'CONNECT', ':authority', 'x', ':protocol', 'websocket', ':scheme', 'https', ':path', '/'], HeadKind.Request), 'string', 'no extended CONNECT');
  t.type(parseHead([':status', '101'], HeadKind.Response), 'string', '101 does not exist in HTTP/2');
  t.type(parseHead([':status', '2000'], HeadKind.Response), 'string');
  t.type(parseHead(['grpc-status', '0', ':status', '200'], HeadKind.Trailers), 'string', 'no pseudo-header in trailers');
});
