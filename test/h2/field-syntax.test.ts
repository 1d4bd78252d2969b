// What our codec lets through as a request head, over mutual TLS from a raw client: names that
// are not RFC 9110 tokens (x"a, x(a, x/a, x{a) and values with control characters other than
// HTAB are stream errors (PROTOCOL_ERROR, counted as malformed_headers) and never reach the
// handler; `:path: *` goes only with OPTIONS (RFC 9113 §8.3.1); a `:scheme` that is not an RFC 3986
// scheme (`ja va`, `1http`) is malformed; two Hosts are malformed (as
// nghttp2 has it); a repeated single-valued field (authorization, content-type) keeps its first
// value, as Node's codec does, where other repeats are joined.

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import type { IncomingHeaders } from '../../src/h2/headers.js';
import { FRAME, errorCodeOf, requestHeaders, type Frame } from '../helpers/raw-h2.js';
import { rawClientOf, startOurServer } from './fixtures/h2-helpers.js';

const GET: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/']];
const resetOf = (id: number) => (f: Frame) => f.type === FRAME.RST_STREAM && f.streamId === id;
const answerOf = (id: number) => (f: Frame) => f.type === FRAME.HEADERS && f.streamId === id;

t.test('non-token names, control characters, `*` for GET: stream errors; the valid neighbours are served', async (t) => {
  const seen: IncomingHeaders[] = [];
  const server = await startOurServer((stream, headers) => {
    seen.push(headers);
    stream.respond({ ':status': 200 }, { endStream: true });
  }, { tls: true });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);

  const bad: Array<[string, Array<[string, string]>]> = [
    ['name x"a', [...GET, ['x"a', '1']]],
    ['name x(a', [...GET, ['x(a', '1']]],
    ['name x/a', [...GET, ['x/a', '1']]],
    ['name x{a', [...GET, ['x{a', '1']]],
    ['name x@a', [...GET, ['x@a', '1']]],
    ...[0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1f, 0x7f].map((c): [string, Array<[string, string]>] => [`value with 0x${c.toString(16)}`, [...GET, ['x-a', `a${String.fromCharCode(c)}b`]]]),
    [':path * with GET', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '*']]],
    [':path not a path', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', 'orders']]],
    ['two Hosts', [...GET, ['host', 'localhost'], ['host', 'b.example']]],
    [':scheme with a space', [[':method', 'GET'], [':scheme', 'ja va'], [':authority', 'localhost'], [':path', '/']]],
    [':scheme starting with a digit', [[':method', 'GET'], [':scheme', '1http'], [':authority', 'localhost'], [':path', '/']]],
  ];
  const good: Array<[string, Array<[string, string]>]> = [
    ['every tchar', [...GET, ["x-!#$%&'*+.^_`|~09az", 'v']]],
    ['HTAB and obs-text inside a value', [...GET, ['x-a', 'a\tb\xffc']]],
    ['OPTIONS *', [[':method', 'OPTIONS'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '*']]],
    [':scheme with + - .', [[':method', 'GET'], [':scheme', 'svn+ssh.x-y'], [':authority', 'localhost'], [':path', '/']]],
  ];
  let id = 1;
  const badIds = bad.map(([, fields]) => {
    raw.write(requestHeaders(id, fields));
    return (id += 2) - 2;
  });
  const goodIds = good.map(([, fields]) => {
    raw.write(requestHeaders(id, fields));
    return (id += 2) - 2;
  });
  for (const [i, [what]] of bad.entries()) {
    const rst = await raw.waitFor(resetOf(badIds[i]!), `RST_STREAM for ${what}`);
    t.equal(errorCodeOf(rst), ErrorCode.PROTOCOL_ERROR, `${what}: reset with PROTOCOL_ERROR`);
  }
  for (const [i, [what]] of good.entries()) await raw.waitFor(answerOf(goodIds[i]!), `an answer for ${what}`);
  t.equal(seen.length, good.length, 'only the valid requests reached the handler');
  t.equal(seen[1]?.['x-a'], 'a\tb\xffc');
  t.same(
    server.observer.streamErrors.map((e) => e.reason),
    bad.map(() => 'malformed_headers'),
    'each counted as malformed_headers',
  );
  t.notOk(raw.frames.some((f) => f.type === FRAME.GOAWAY), 'stream errors only: the connection stays');
});

t.test('a repeated single-valued field keeps its first value; other repeats are joined', async (t) => {
  let seen: IncomingHeaders | undefined;
  const server = await startOurServer((stream, headers) => {
    seen = headers;
    stream.respond({ ':status': 200 }, { endStream: true });
  }, { tls: true });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  raw.write(
    requestHeaders(1, [
      ...GET,
      ['authorization', 'Bearer first'],
      ['authorization', 'Bearer second'],
      ['content-type', 'text/plain'],
      ['content-type', 'application/json'],
      ['accept', 'text/html'],
      ['accept', 'application/json'],
      ['cookie', 'a=1'],
      ['cookie', 'b=2'],
    ]),
  );
  await raw.waitFor(answerOf(1), 'the answer');
  t.equal(seen?.authorization, 'Bearer first');
  t.equal(seen?.['content-type'], 'text/plain');
  t.equal(seen?.accept, 'text/html, application/json');
  t.equal(seen?.cookie, 'a=1; b=2');
});
