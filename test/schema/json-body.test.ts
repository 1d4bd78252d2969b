// src/schema/json-body.ts: a body read for validation is collected into one buffer, whatever
// the pieces it comes in (an HTTP/2 peer chooses them: 1-byte DATA frames would otherwise cost
// a Buffer object, ~100 bytes of heap, per byte, up to the spec's maxBodySize), in order, and
// refused past its limit; the same for the shadow check (watchBody).

import t from 'tap';
import v8 from 'node:v8';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { readAll, watchBody } from '../../src/schema/json-body.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A stream fed by the test, one 1-byte chunk per push. */
function trickle(): Readable {
  return new Readable({ read() {} });
}

t.test('200,000 one-byte chunks: collected whole and in order, at about the bytes in memory', async (t) => {
  const source = trickle();
  const count = 200_000;
  let result: Buffer | undefined | 'pending' = 'pending';
  readAll(source, 1 * MiB, (body) => (result = body));
  const before = heapAfterGc();
  for (let i = 0; i < count; i++) source.push(Buffer.of(i & 0xff));
  await new Promise((resolve) => setImmediate(resolve));
  const growth = heapAfterGc() - before;
  t.ok(growth < 2 * MiB, `heap grew ${(growth / MiB).toFixed(1)} MiB while ${count} one-byte chunks were held (limit 2 MiB; ~100 bytes a chunk as a list)`);
  source.push(null);
  await new Promise((resolve) => setImmediate(resolve));
  const body = result as unknown as Buffer;
  t.equal(body.length, count);
  let wrong = -1;
  for (let i = 0; i < count && wrong < 0; i++) if (body[i] !== (i & 0xff)) wrong = i;
  t.equal(wrong, -1, 'every byte in order');
});

t.test('past the limit: undefined, and the shadow check names the limit', async (t) => {
  const source = trickle();
  let result: Buffer | undefined | 'pending' = 'pending';
  readAll(source, 10, (body) => (result = body));
  source.push(Buffer.from('0123456789'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(result, 'pending', 'exactly the limit is still fine');
  source.push(Buffer.from('x'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(result, undefined, 'one byte more: refused');

  const shadowed = trickle();
  const verdict: { violation: unknown } = { violation: undefined };
  watchBody(shadowed, 4, (() => true) as never, verdict as never);
  shadowed.resume();
  shadowed.push(Buffer.from('{"a":1}'));
  await new Promise((resolve) => setImmediate(resolve));
  t.match(verdict.violation, { kind: 'body', message: /larger than the 4-byte limit/ }, 'watchBody: too large');
});
