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

// V8's linear engine takes no counted repetition past about {1,16}: such a pattern backtracked,
// and one that also repeats or alternates within it held a sidecar 5 s on 30 characters and a
// '!' (a review); it runs on RE2 now. One with a single repetition stays on V8 (cheap, bounded).
const COUNTED = `openapi: 3.0.3
info: {title: counted, version: '1'}
paths:
  /tags:
    get:
      parameters:
        - {name: words, in: query, schema: {type: string, pattern: '^(?:[a-zA-Z0-9]+[-_ ]?){1,20}$'}}
        - {name: pick, in: query, schema: {type: string, pattern: '^(a|ab){1,40}$'}}
        - {name: code, in: query, schema: {type: string, pattern: '^[A-Z0-9]{1,32}$'}}
      responses: {'200': {description: ok}}
`;

t.test('patterns with a counted repetition past {1,16} that repeat or alternate within it finish at once, with the same verdicts', async (t) => {
  const file = join(t.testdir(), 'spec.yaml');
  await writeFile(file, COUNTED);
  const spec = await CompiledSpec.load(file);
  const words = timed(() => spec.check('GET', '/tags', `words=${'a'.repeat(30)}%21`, {}, false));
  t.equal(words.value.violation?.kind, 'query', 'the value is refused');
  t.ok(words.ms < BOUND_MS, `^(?:[a-zA-Z0-9]+[-_ ]?){1,20}$ on 30 a's and '!': ${words.ms.toFixed(1)} ms (seconds to minutes on V8's backtracking engine)`);
  t.equal(spec.check('GET', '/tags', 'words=red-green_blue%20sky', {}, false).violation, undefined, 'a matching value passes');
  t.equal(spec.check('GET', '/tags', `words=${'a-'.repeat(21)}`, {}, false).violation?.kind, 'query', 'more than 20 words: refused');
  const pick = timed(() => spec.check('GET', '/tags', `pick=${'a'.repeat(40)}c`, {}, false));
  t.equal(pick.value.violation?.kind, 'query', 'alternatives under the repetition: refused');
  t.ok(pick.ms < BOUND_MS, `^(a|ab){1,40}$ on 40 a's and 'c': ${pick.ms.toFixed(1)} ms`);
  t.equal(spec.check('GET', '/tags', 'pick=abaab', {}, false).violation, undefined, 'a matching value passes');
  t.equal(spec.check('GET', '/tags', 'code=AB12', {}, false).violation, undefined, 'a single repetition: V8, as before');
  t.equal(spec.check('GET', '/tags', `code=${'A'.repeat(33)}`, {}, false).violation?.kind, 'query', 'and its bound holds');
});

t.test("on RE2 a pattern keeps JavaScript's meaning, and each pattern is compiled there once", async (t) => {
  const { specRegExp } = await import('../../src/schema/linear-regexps.js');
  // RE2's own \s is [\t\n\f\r ] and its . stops at \n only: written out as JavaScript's
  const nonSpace = specRegExp('^(?:\\S+,?){1,20}$', 'u');
  t.notOk(nonSpace instanceof RegExp, 'on RE2 (not V8, which would give the same answers below)');
  t.equal(nonSpace.test('a\u00a0b'), false, '\\S: a no-break space is white space, as on V8');
  t.equal(nonSpace.test('a,b'), true);
  const words = specRegExp('^(?:\\w+\\s?){1,20}$', 'u');
  t.equal(words.test('a\u00a0b\u2028c'), true, '\\s: no-break space and line separator, as on V8');
  const any = specRegExp('^(?:.+;?){1,20}$', 'u');
  t.notOk(any instanceof RegExp, 'on RE2');
  // [^] is any character in JavaScript, a class starting with a literal ] in RE2: left to V8
  const anyChar = specRegExp('^(?:[^]+[,;]?){1,20}$', 'u');
  t.ok(anyChar instanceof RegExp && anyChar.test('a,b'), '[^] stays on V8, with its meaning');
  t.equal(any.test('a\rb'), false, '.: not a carriage return, as on V8');
  t.equal(any.test('a;b'), true);
  // an escaped + is a character: the + after it is a second quantifier (the scanner skipped it)
  const plus = timed(() => specRegExp('^(?:\\++){1,30}$', 'u').test(`${'+'.repeat(28)}!`));
  t.equal(plus.value, false);
  t.ok(plus.ms < BOUND_MS, `^(?:\\++){1,30}$ on 28 '+' and '!': ${plus.ms.toFixed(1)} ms (11 s on V8)`);
  // re2-wasm's memory is fixed and never freed: Ajv asks anew at every load, 385 loads filled it
  const first = specRegExp('^(?:[a-z]+-?){1,20}$', 'u');
  let same = true;
  for (let i = 0; i < 5_000; i++) same &&= specRegExp('^(?:[a-z]+-?){1,20}$', 'u') === first;
  t.ok(same, 'asked 5,000 times, one compiled expression');
  t.equal(first.test('red-green'), true);
});

// re2-wasm's memory is fixed: past what it holds, a pattern that needs it fails its spec's load
// (a reload is refused whole) instead of running on V8 unlisted (the loading thread, with a
// memory of its own, judged it runs on RE2: a review)
t.test('more patterns needing RE2 than it holds: the load fails, none runs on V8 unlisted', async (t) => {
  const { specRegExp } = await import('../../src/schema/linear-regexps.js');
  const kept = specRegExp('^(?:[a-z]+_?){1,20}$', 'u');
  let refused: Error | undefined;
  for (let i = 0; i < 400 && refused === undefined; i++) {
    try {
      const made = specRegExp(`^(?:[a-z]+-?){1,20}x${i}$`, 'u');
      if (made instanceof RegExp) throw new Error(`pattern ${i} ran on V8`);
    } catch (err) {
      refused = err as Error;
    }
  }
  t.match(refused?.message, /needs the RE2 engine, which holds 200 patterns at most in this process: restart the sidecar to load this spec/, 'refused in words');
  t.equal(specRegExp('^(?:[a-z]+_?){1,20}$', 'u'), kept, 'one compiled before still serves');
});
