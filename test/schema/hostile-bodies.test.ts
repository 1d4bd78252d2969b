// JSON bodies built to hurt the validator, against a spec whose array must hold unique items
// (Ajv compares them with a recursive deep-equal): nesting past MAX_JSON_DEPTH is a body
// violation before any parsing or validation (20,000 levels in 80 KB overflowed the stack and
// ended the process, in shadow mode as in enforce); a validator that throws is a violation,
// never the process's end; a caller's long property name or a bad JSON's text is not echoed
// back whole into the answer and the log. The inbound runs in this process: it must survive.

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { loadGuard } from '../../src/schema/guard.js';
import { checkJsonBody, MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/schema/json-body.js';
import { compilersFor } from '../../src/schema/compilers.js';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';

const SPEC = `openapi: 3.0.3
info: {title: tags, version: 1.0.0}
paths:
  /tags:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                tags: {type: array, uniqueItems: true}
      responses:
        "200": {description: ok}
`;
const HEAD = { 'content-type': 'application/json' };
const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

t.test('nesting is measured on the bytes, brackets in strings aside', async (t) => {
  t.notOk(nestsDeeperThan(Buffer.from(deep(MAX_JSON_DEPTH)), MAX_JSON_DEPTH), 'exactly the limit passes');
  t.ok(nestsDeeperThan(Buffer.from(deep(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH), 'one more is refused');
  t.notOk(nestsDeeperThan(Buffer.from(JSON.stringify({ s: '['.repeat(500), e: 'a\\"[[[' })), 3), 'brackets inside strings (escaped quotes too) do not count');
  t.ok(nestsDeeperThan(Buffer.from(`{"a":"\\\\"${'['.repeat(4)}`), 3), 'an escaped backslash ends its escape');
  const throwing = (() => {
    throw new RangeError('Maximum call stack size exceeded');
  }) as unknown as ValidateFunction;
  t.match(checkJsonBody(throwing, Buffer.from('{"a":1}')), { kind: 'body', message: 'body: could not be validated against its schema' }, 'a validator that throws: a violation');
  const secret = checkJsonBody(throwing, Buffer.from('{"password":"hunter2" x}'));
  t.notMatch(secret?.message, /hunter2/, 'a bad JSON body is not quoted back');
  t.match(secret?.message, /^body: is not valid JSON \(at position \d+\)$/);
});

t.test('over the inbound, enforce and shadow: a deeply nested body is a violation and the process goes on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spec = join(dir, 'tags.yaml');
  writeFileSync(spec, SPEC);
  // two equal items, 20,000 levels deep: Ajv's uniqueItems deep-equal would recurse through them
  const bomb = `{"tags":[${deep(20_000)},${deep(20_000)}]}`;
  for (const mode of ['enforce', 'shadow'] as const) {
    const f = await startInbound();
    t.teardown(() => f.close());
    f.inbound.setSchema(await loadGuard({ spec, mode, maxBodySize: 1 << 20 }));
    const tls = await f.tlsOptions();
    const res = await h1Request(f.port, tls, { method: 'POST', path: '/tags', headers: HEAD, body: bomb });
    t.equal(res.status, mode === 'enforce' ? 400 : 200, `${mode}: ${mode === 'enforce' ? 'refused' : 'forwarded, as shadow does'}`);
    const records = await f.observer.waitForRequests(1);
    t.match(records[0]?.schema?.violation, { kind: 'body', message: `body: nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels` }, `${mode}: the violation is recorded`);
    // just under the limit, equal items: Ajv runs its deep-equal and answers
    const twins = `{"tags":[${deep(MAX_JSON_DEPTH - 2)},${deep(MAX_JSON_DEPTH - 2)}]}`;
    const dup = await h1Request(f.port, tls, { method: 'POST', path: '/tags', headers: HEAD, body: twins });
    t.equal(dup.status, mode === 'enforce' ? 400 : 200, `${mode}: still serving`);
    if (mode === 'enforce') t.match(JSON.parse(dup.body).message, /^body\/tags: must NOT have duplicate items/);
    // a 100 KB property name: the answer names it, cut short
    const long = await h1Request(f.port, tls, { method: 'POST', path: '/tags', headers: HEAD, body: JSON.stringify({ ['k'.repeat(100_000)]: 1 }) });
    if (mode === 'enforce') {
      const message = String(JSON.parse(long.body).message);
      t.ok(message.length < 300, `the message is ${message.length} characters`);
      t.match(message, /^body\/k{195}… \(100005 characters\): is not allowed$/);
    }
  }
});

t.test('a number too large for a double is a body violation: parsed as Infinity, Ajv took it for any integer', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spec = join(dir, 'orders.yaml');
  writeFileSync(
    spec,
    `openapi: 3.0.3
info: {title: orders, version: 1.0.0}
paths:
  /orders:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                qty: {type: integer, minimum: 1}
                note: {type: string}
                items: {type: array, items: {type: number}}
      responses:
        "200": {description: ok}
`,
  );
  const f = await startInbound();
  t.teardown(() => f.close());
  f.inbound.setSchema(await loadGuard({ spec, mode: 'enforce', maxBodySize: 1 << 20 }));
  const tls = await f.tlsOptions();
  const post = (body: string) => h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: HEAD, body });
  // the last: 250 digits and e99, which the expression once used to find such numbers (an exponent of three digits, or 309 digits in a row) missed
  for (const body of ['{"qty":1e400}', '{"qty":1E+309}', '{"qty":5,"items":[1,-2e308]}', `{"qty":${'9'.repeat(400)}}`, `{"qty":5,"items":[1${'0'.repeat(250)}e99]}`]) {
    const res = await post(body);
    t.equal(res.status, 400, `${body.slice(0, 40)}: refused`);
    t.match(JSON.parse(res.body), { error: 'schema_violation', message: 'body: holds a number too large for a double (beyond ±1.8e308)' });
  }
  for (const body of ['{"qty":5}', '{"qty":1e2}', '{"qty":5,"note":"e400 and 1e999 in a string","items":[1.5e300]}']) t.equal((await post(body)).status, 200, `${body}: passes`);
});

t.test('a 1 MiB body of numbers costs about what a body of letters does', async (t) => {
  // the compilers turn on V8's linear-time engine for the process, as a sidecar with a spec has
  // it: regular expressions that looked for long numbers backtracked on runs of digits and ran
  // on it, 0.4-0.9 s for each of these bodies, per request
  const validate = compilersFor('3.0.3').body.compile({ type: 'object', properties: { qty: { type: 'integer' }, note: { type: 'string' }, items: { type: 'array', items: { type: 'number' } } } });
  const runsOf = (unit: string) => Array.from({ length: Math.ceil((1 << 20) / (unit.length + 1)) }, () => unit);
  const leastMs = (text: string) => {
    const body = Buffer.from(text);
    let least = Infinity;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      t.equal(checkJsonBody(validate, body), undefined, 'passes');
      least = Math.min(least, performance.now() - started);
    }
    return least;
  };
  const letters = leastMs(JSON.stringify({ qty: 5, note: 'a'.repeat(1 << 20) }));
  const bodies = {
    'numbers of 15 digits (850 ms before)': `{"qty":5,"items":[${runsOf('123456789012345').join(',')}]}`,
    'numbers of 9 digits (594 ms before)': `{"qty":5,"items":[${runsOf('123456789').join(',')}]}`,
    'numbers of 308 digits (438 ms before)': `{"qty":5,"items":[${runsOf('9'.repeat(308)).join(',')}]}`,
    'runs of 308 digits in a string (419 ms before)': JSON.stringify({ qty: 5, note: runsOf('9'.repeat(308)).join('x') }),
  };
  for (const [what, text] of Object.entries(bodies)) {
    const ms = leastMs(text);
    t.ok(ms < letters + 150, `${what}: ${ms.toFixed(0)} ms, letters ${letters.toFixed(0)} ms`);
  }
});
