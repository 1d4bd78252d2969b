// src/schema/json-body.ts: a body read for validation is collected into one buffer, whatever
// the pieces it comes in (an HTTP/2 peer chooses them: 1-byte DATA frames would otherwise cost
// a Buffer object, ~100 bytes of heap, per byte, up to the spec's maxBodySize), in order, and
// refused past its limit; the same for the shadow check (watchBody).

// test-run: own process (it measures this process's heap)
import t from 'tap';
import v8 from 'node:v8';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { readAll, watchBody } from '../../src/schema/json-body.js';
import { BodyBudget } from '../../src/schema/body-budget.js';

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
  readAll(source, 1 * MiB, new BodyBudget(64 * MiB), (body) => (result = body));
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
  readAll(source, 10, new BodyBudget(64 * MiB), (body) => (result = body));
  source.push(Buffer.from('0123456789'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(result, 'pending', 'exactly the limit is still fine');
  source.push(Buffer.from('x'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(result, undefined, 'one byte more: refused');

  const shadowed = trickle();
  const verdict: { violation: unknown } = { violation: undefined };
  watchBody(shadowed, 4, new BodyBudget(64 * MiB), (() => true) as never, false, verdict as never);
  shadowed.resume();
  shadowed.push(Buffer.from('{"a":1}'));
  await new Promise((resolve) => setImmediate(resolve));
  t.match(verdict.violation, { kind: 'body', message: /larger than the 4-byte limit/ }, 'watchBody: too large');
});

t.test('the budget: taken as bytes come, given back when a body ends, outgrows a limit, or is destroyed before its end', async (t) => {
  const budget = new BodyBudget(100);
  const ended = trickle();
  let result: Buffer | undefined | 'pending' = 'pending';
  readAll(ended, 80, budget, (body) => (result = body));
  ended.push(Buffer.alloc(60, 0x61));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(budget.used, 80, 'what is allocated for the body is counted (at least 1 KiB, at most its limit)');
  const second = trickle();
  let why: string | undefined;
  readAll(second, 80, budget, (_body, reason) => (why = reason));
  second.push(Buffer.alloc(50));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(why, 'overloaded', 'a body that does not fit in what is left: overloaded');
  t.equal(budget.used, 80, 'and it took nothing');
  ended.push(null);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal((result as unknown as Buffer).length, 60);
  t.equal(budget.used, 0, 'an ended body gives its bytes back');

  for (const kind of ['readAll', 'watchBody'] as const) {
    const abandoned = trickle();
    if (kind === 'readAll') readAll(abandoned, 80, budget, () => t.fail('nothing is called for an abandoned body'));
    else watchBody(abandoned, 80, budget, (() => true) as never, false, { violation: undefined });
    abandoned.resume();
    abandoned.push(Buffer.alloc(30));
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(budget.used, 80, `${kind}: held`);
    abandoned.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(budget.used, 0, `${kind}: a body destroyed before its end gives its bytes back`);
  }
});
