// A spec's regular expressions run on what callers send: `pattern` on query, path and header
// values and on JSON body strings, and each path template's own regex on the request path. V8
// backtracks, so ^(a+)+$ on "aaaa…a!" takes exponential time and a template with three
// parameters in one segment cubic time: one request held a sidecar's event loop for seconds to
// hours (all traffic and the admin port with it). Now an expression that backtracks too much
// finishes on V8's linear-time engine (src/schema/linear-regexps.ts): each check below, which
// took 10-20 s before (and doubles per character), takes milliseconds, with the same verdict.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { checkJsonBody } from '../../src/schema/json-body.js';

const SPEC = `openapi: 3.0.3
info: {title: backtracking, version: '1'}
paths:
  /search:
    get:
      parameters:
        - {name: q, in: query, required: true, schema: {type: string, pattern: '^(a+)+$'}}
        - {name: x-tag, in: header, schema: {type: string, pattern: '^(\\w+\\s?)+$'}}
      responses: {'200': {description: ok}}
  /names:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties: {name: {type: string, pattern: '^([a-z]+\\s?)+$'}}
      responses: {'200': {description: ok}}
  /days/{y}-{m}-{d}:
    get:
      parameters:
        - {name: y, in: path, required: true, schema: {type: string}}
        - {name: m, in: path, required: true, schema: {type: string}}
        - {name: d, in: path, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
  /letters:
    get:
      parameters:
        - {name: w, in: query, required: true, schema: {type: string, pattern: '^\\p{L}+$'}}
      responses: {'200': {description: ok}}
`;

/** Each check, timed: what it found and how long it took. */
function timed<T>(run: () => T): { value: T; ms: number } {
  const started = performance.now();
  const value = run();
  return { value, ms: performance.now() - started };
}

const BOUND_MS = 1_000;

t.test('patterns and templates that backtrack on a built string finish at once, with the same verdicts', async (t) => {
  const file = join(t.testdir(), 'spec.yaml');
  await writeFile(file, SPEC);
  const spec = await CompiledSpec.load(file);

  const query = timed(() => spec.check('GET', '/search', `q=${'a'.repeat(30)}!`, {}, false));
  t.equal(query.value.violation?.kind, 'query', 'the query value is refused');
  t.ok(query.ms < BOUND_MS, `query pattern ^(a+)+$ on 30 a's and '!': ${query.ms.toFixed(1)} ms`);
  t.equal(spec.check('GET', '/search', `q=${'a'.repeat(30)}`, {}, false).violation, undefined, 'a matching value passes');

  const header = timed(() => spec.check('GET', '/search', 'q=a', { 'x-tag': `${'a'.repeat(30)}!` }, false));
  t.equal(header.value.violation?.kind, 'header', 'the header value is refused');
  t.ok(header.ms < BOUND_MS, `header pattern: ${header.ms.toFixed(1)} ms`);

  const post = spec.check('POST', '/names', '', { 'content-type': 'application/json' }, true);
  const body = timed(() => checkJsonBody(post.body!, Buffer.from(JSON.stringify({ name: `${'abcdefghijklmnopqrstuvwxyz'.repeat(2)}!` }))));
  t.equal(body.value?.kind, 'body', 'the body string is refused');
  t.ok(body.ms < BOUND_MS, `body pattern ^([a-z]+\\s?)+$ on 52 letters and '!': ${body.ms.toFixed(1)} ms`);
  t.equal(checkJsonBody(post.body!, Buffer.from(JSON.stringify({ name: 'ada lovelace' }))), undefined, 'a matching body passes');

  const path = timed(() => spec.check('GET', `/days/${'-'.repeat(6_000)}/`, '', {}, false));
  t.equal(path.value.operation, undefined, 'the path matches no template');
  t.ok(path.ms < BOUND_MS, `template /days/{y}-{m}-{d} on 6,000 dashes: ${path.ms.toFixed(1)} ms`);
  t.same(spec.check('GET', '/days/2026-12-01', '', {}, false).operation?.template, '/days/{y}-{m}-{d}', 'a real day still matches');

  // a pattern that needs unicode mode keeps it (\\p{L} means letters, not "p{L}")
  t.equal(spec.check('GET', '/letters', 'w=%C3%A9t%C3%A9', {}, false).violation, undefined, 'é t é: letters');
  t.equal(spec.check('GET', '/letters', 'w=abc1', {}, false).violation?.kind, 'query', 'a digit is not a letter');
});
