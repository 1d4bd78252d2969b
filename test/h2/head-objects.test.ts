// A decoded head's object (src/h2/headers.ts parseHead): nothing inherited, so any field name
// is a field, and fast properties (hidden classes), not the dictionary mode Object.create(null)
// objects start in: dictionary heads were most of what a busy inbound's scavenges kept
// (old generation 0.6 MB/s against 0.2; peer-harness peak RSS 92 against 79 MB).

import t from 'tap';
import v8 from 'node:v8';
import { HeadKind, parseHead, type ParsedHead } from '../../src/h2/headers.js';

v8.setFlagsFromString('--allow-natives-syntax');
// compiled after the flag: V8's own answer about an object's property storage
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

const request = (...fields: string[]): ParsedHead => {
  const parsed = parseHead([':method', 'GET', ':scheme', 'https', ':authority', 'orders', ':path', '/orders/42', ...fields], HeadKind.Request);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
};

t.test('a typical head has fast properties', async (t) => {
  const { headers } = request('accept', 'application/json', 'user-agent', 'curl/8', 'x-request-id', 'abc', 'content-type', 'application/json');
  t.ok(hasFastProperties(headers), 'hidden classes, not a hash table');
  t.equal(headers[':path'], '/orders/42');
  t.equal(headers['x-request-id'], 'abc');
});

t.test('nothing is inherited: any field name is a field, and nothing leaks into Object.prototype', async (t) => {
  const names = ['__proto__', 'constructor', 'tostring', 'hasownproperty', 'valueof', '__definegetter__', 'isprototypeof'];
  const { headers } = request(...names.flatMap((name) => [name, `v-${name}`]), 'constructor', 'second');
  for (const name of names.slice(1)) if (name !== 'constructor') t.equal(headers[name], `v-${name}`, name);
  t.equal(headers['__proto__'], 'v-__proto__', 'an own field named __proto__');
  t.ok(Object.keys(headers).includes('__proto__'));
  t.equal(headers.constructor, 'v-constructor, second', 'a repeated field joins as any other (nothing inherited was taken for a first value)');
  t.equal((headers as Record<string, unknown>).toString, undefined, 'no Object.prototype methods');
  t.equal(Object.getPrototypeOf(Object.getPrototypeOf(headers)), null, 'one empty prototype, then nothing');
  t.equal(Object.keys(Object.getPrototypeOf(headers) as object).length, 0);
  t.equal(({} as Record<string, unknown>)['v-__proto__'], undefined);
  t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  const first = request('x-a', '1').headers;
  t.equal(first.constructor, undefined, 'a head without such a field has none');
  t.equal(first['__proto__'], undefined);
});

t.test('a head of many fields still reads back whole', async (t) => {
  const fields = Array.from({ length: 60 }, (_, i) => [`x-field-${i}`, `value ${i}`]).flat();
  const { headers } = request(...fields);
  for (let i = 0; i < 60; i++) t.equal(headers[`x-field-${i}`], `value ${i}`);
  t.equal(Object.keys(headers).length, 64);
});
