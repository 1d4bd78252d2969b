// src/http/raw-headers.ts on heads as undici hands them over: values lose the SP and HTAB
// around them (undici keeps what follows a value; an HTTP/2 peer refuses such a value), in
// response heads and trailers alike, while other bytes (obs-text 0xA0) stay; the response's
// Transfer-Encoding comes back whole, so a coding other than chunked can be refused.

import t from 'tap';
import { forwardableResponseHead, forwardableResponseList, headersOfRaw, owsTrimmed } from '../../src/http/raw-headers.js';

const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));

t.test('owsTrimmed trims SP and HTAB only', async (t) => {
  t.equal(owsTrimmed(' \t a b \t '), 'a b');
  t.equal(owsTrimmed('plain'), 'plain');
  t.equal(owsTrimmed('   '), '');
  t.equal(owsTrimmed('\xa0x\xa0'), '\xa0x\xa0', 'obs-text is part of the value');
});

t.test('trailers (headersOfRaw) are trimmed', async (t) => {
  const trailers = headersOfRaw(raw('X-T', 'v  \t', 'Set-Cookie', ' a=1 ', 'X-R', 'one ', 'X-R', ' two'));
  t.equal(trailers['x-t'], 'v');
  t.same(trailers['set-cookie'], ['a=1']);
  t.equal(trailers['x-r'], 'one, two', 'repeats joined from trimmed values');
});

t.test('response heads are trimmed, and their Transfer-Encoding reported whole', async (t) => {
  const head = forwardableResponseHead(raw('X-Ws', 'b   ', 'Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked '));
  t.equal(head.headers['x-ws'], 'b');
  t.equal(head.transferEncoding, 'gzip, chunked');
  t.ok(head.chunked);
  const list = forwardableResponseList(raw('X-Ws', '\tb ', 'Transfer-Encoding', 'chunked'));
  t.same(list.list.slice(2), ['x-ws', 'b']);
  t.equal(list.transferEncoding, 'chunked');
  t.equal(forwardableResponseList(raw('Content-Length', '2')).transferEncoding, undefined);
});
