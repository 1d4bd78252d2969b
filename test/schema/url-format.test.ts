// `format: url` on what callers send. ajv-formats' check is a regular expression that took time
// square in the length of `http://` and a run of colons: 3.5 s of the event loop for one 64 KB
// body through an inbound in enforce mode. src/schema/url-format.ts accepts what that expression
// accepts (compared here on generated strings) in time linear in the length.

import t from 'tap';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { isUrl } from '../../src/schema/url-format.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

// the expression itself, from the package, to compare with (it is fine on short strings)
const require = createRequire(import.meta.url);
const URL_EXPRESSION = (require('ajv-formats/dist/formats.js') as { fullFormats: { url: RegExp } }).fullFormats.url;

const SPEC = `openapi: 3.0.3
info: {title: links, version: '1'}
paths:
  /links:
    post:
      parameters:
        - {name: next, in: query, schema: {type: string, format: url}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties: {href: {type: string, format: url}}
      responses: {'200': {description: ok}}
`;

t.test('the same verdicts as ajv-formats on chosen URLs', async (t) => {
  const cases = [
    'http://example.com', 'https://example.com/a/b?c=d#e', 'ftp://files.example.org:21/x', 'HTTP://EXAMPLE.COM', 'http://user:pw@example.com/',
    'http://a@b@example.com', 'http://@example.com', 'http://x/y@example.com', 'http://x/y@example.com/z', 'http://example.com/p@q',
    'http://8.8.8.8', 'http://10.0.0.1', 'http://127.0.0.1:8080', 'http://172.16.0.1', 'http://172.160.0.1', 'http://172.32.0.1', 'http://192.168.1.1',
    'http://169.254.1.1', 'http://1.01.1.1', 'http://1.1.1.255', 'http://224.1.1.1', 'http://0.1.1.1', 'http://localhost', 'http://a.b', 'http://a.bc',
    'http://a-b.com', 'http://-a.com', 'http://a--b.com', 'http://a.c0m', 'http://ex ample.com', 'http://example.com/a b', 'http://example.com:1',
    'http://example.com:123456', 'http://example.com:80:90', 'http://example.com?x', 'http://bücher.de', 'http://xn--bcher-kva.de', 'mailto:a@b.com',
    'http://example.com.', 'http://.example.com', 'http://example..com', 'http://\u{1F600}.com', 'http://a.\u00e9\u00e9', `http://${':'.repeat(50)}`,
  ];
  for (const text of cases) t.equal(isUrl(text), URL_EXPRESSION.test(text), JSON.stringify(text));
  // the two differences, on purpose: refused here, where the expression accepts them
  for (const text of ['http://a\u3000b.com', 'http://exa\uFEFFmple.com', 'http://example.\u2028\u2028', 'http://a\u1680.com/x', 'httpſ://example.com']) {
    // named by code points: a U+2028 in a test name breaks the TAP stream's line
    const shown = text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    t.ok(URL_EXPRESSION.test(text), `${shown}: the expression accepts it`);
    t.notOk(isUrl(text), 'refused here: white space in a host, or a scheme that is not ASCII');
  }
});

t.test('the same verdicts as ajv-formats on generated strings', async (t) => {
  const piece = fc.constantFrom('http://', 'https://', 'ftp://', 'HTTP://', 'a', 'b', 'xy', 'com', 'org', '.', '-', '@', ':', '/', '?', '#', ' ', '0', '1', '10', '127', '169', '172', '16', '192', '168', '254', '255', '256', '80', '8080', '\u00e9', '\u{1F600}', '_', '%');
  const parts = (max: number) => fc.array(piece, { maxLength: max }).map((list) => list.join(''));
  const label = fc.constantFrom('a', 'xy', 'com', 'org', 'a-b', '-a', 'b-', '\u00e9', 'x1', '1', '');
  const octet = fc.constantFrom('0', '1', '01', '10', '16', '31', '32', '127', '160', '168', '169', '172', '192', '223', '224', '254', '255', '256', '1000');
  const host = fc.oneof(fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')), fc.array(octet, { minLength: 3, maxLength: 5 }).map((o) => o.join('.')));
  // URL-shaped: scheme, maybe a user part, a host, maybe a port and a path, each maybe spoilt
  const shaped = fc
    .tuple(fc.constantFrom('http://', 'https://', 'ftp://', 'HTTP://'), fc.oneof(fc.constant(''), parts(4).map((u) => `${u}@`)), host, fc.oneof(fc.constant(''), fc.constantFrom(':80', ':1', ':123456', ':8080', ':x')), fc.oneof(fc.constant(''), parts(6).map((p) => `/${p}`)))
    .map((l) => l.join(''));
  const text = fc.oneof(parts(14), fc.tuple(fc.constantFrom('http://', 'https://', 'ftp://'), parts(14)).map(([scheme, rest]) => scheme + rest), shaped, shaped);
  let accepted = 0;
  fc.assert(
    fc.property(text, (s) => {
      const expected = URL_EXPRESSION.test(s);
      if (expected) accepted++;
      return isUrl(s) === expected;
    }),
    { numRuns: 30_000, seed: 20261205 },
  );
  t.ok(accepted > 500, `${accepted} of the generated strings are URLs (both sides of the verdict are tried)`);
});

t.test('a long string that is not a URL is refused in linear time', async (t) => {
  for (const text of [`http://${':'.repeat(1 << 20)}`, `http://${'@'.repeat(1 << 20)}`, `http://${'@/'.repeat(1 << 19)}`, `http://${'a.'.repeat(1 << 19)}`, `http://a.com${':1'.repeat(1 << 19)}`]) {
    // CPU time, not the clock: a busy machine (a whole test run beside it) took 287 ms of clock
    const before = process.cpuUsage();
    t.notOk(isUrl(text), `${JSON.stringify(text.slice(0, 12))}… refused`);
    const used = process.cpuUsage(before);
    const ms = (used.user + used.system) / 1000;
    t.ok(ms < 250, `in ${ms.toFixed(1)} ms of CPU (1 MiB; the expression took 3.5 s for 64 KB)`);
  }
  t.ok(isUrl(`http://example.com/${'a'.repeat(1 << 20)}`), 'a long path is a URL');
});

t.test('over the inbound: a 64 KB hostile value is refused at once, good URLs pass', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 2 << 20, fileName: 'links.yaml' });
  const post = (body: string, query = '') => h1Request(f.port, tls, { method: 'POST', path: `/links${query}`, headers: { 'content-type': 'application/json' }, body });
  t.equal((await post(JSON.stringify({ href: 'https://example.com/a' }), '?next=https%3A%2F%2Fexample.org%2F')).status, 200, 'URLs pass');
  const bad = await post(JSON.stringify({ href: 'http://10.0.0.1/' }));
  t.equal(bad.status, 400, 'a private address is not a url (as ajv-formats has it)');
  t.match(JSON.parse(bad.body).message, /^body\/href: must match format "url"$/);
  const started = performance.now();
  const hostile = await post(JSON.stringify({ href: `http://${':'.repeat(64_000)}` }));
  const ms = performance.now() - started;
  t.equal(hostile.status, 400, 'refused');
  t.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms (3.5 s before)`);
});
