// The per-caller round-robin queue (src/http/fair-queue.ts) against a model: for arbitrary
// sequences of add, delete, shift and eviction (fast-check), the items come out caller by
// caller in turn, each caller's in arrival order, nothing is lost or duplicated, and eviction
// takes the newest item of a caller with more than one more waiting than the newcomer's.

import t from 'tap';
import fc from 'fast-check';
import { FairQueue } from '../../src/http/fair-queue.js';

type Op = { kind: 'add'; key: string } | { kind: 'delete'; pick: number } | { kind: 'shift' } | { kind: 'evict'; key: string };

const keys = fc.constantFrom('a', 'b', 'c', 'd');
const ops = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('add' as const), key: keys }),
    fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(50) }),
    fc.record({ kind: fc.constant('shift' as const) }),
    fc.record({ kind: fc.constant('evict' as const), key: keys }),
  ),
  { maxLength: 200 },
);

t.test('matches a model: keys in turn, items in order, eviction of the largest key\'s newest', async (t) => {
  fc.assert(
    fc.property(ops, (sequence: Op[]) => {
      const queue = new FairQueue<number>();
      // the model: per key its items, and the turn order of the keys with items
      const model = new Map<string, number[]>();
      let next = 0;
      for (const op of sequence) {
        if (op.kind === 'add') {
          const item = next++;
          queue.add(op.key, item);
          const items = model.get(op.key);
          if (items) items.push(item);
          else model.set(op.key, [item]);
        } else if (op.kind === 'delete') {
          const all = [...model.values()].flat();
          const item = all.length > 0 ? (all[op.pick % all.length] as number) : -1;
          const was = queue.delete(item);
          if (was !== all.includes(item)) return false;
          for (const [key, items] of model) {
            const at = items.indexOf(item);
            if (at !== -1) items.splice(at, 1);
            if (items.length === 0) model.delete(key);
          }
        } else if (op.kind === 'shift') {
          const got = queue.shift();
          const first = model.entries().next().value as [string, number[]] | undefined;
          if (first === undefined) {
            if (got !== undefined) return false;
            continue;
          }
          const [key, items] = first;
          if (got !== items.shift()) return false;
          model.delete(key);
          if (items.length > 0) model.set(key, items);
        } else {
          const got = queue.evictNewestOfLargest(op.key);
          let largest: number[] | undefined;
          for (const items of model.values()) if (largest === undefined || items.length > largest.length) largest = items;
          const own = model.get(op.key)?.length ?? 0;
          if (largest === undefined || largest.length <= own + 1) {
            if (got !== undefined) return false;
            continue;
          }
          if (got !== largest.pop()) return false;
          for (const [key, items] of model) if (items.length === 0) model.delete(key);
        }
        if (queue.size !== [...model.values()].reduce((n, items) => n + items.length, 0)) return false;
      }
      const rest = queue.drain();
      return queue.size === 0 && rest.length === [...model.values()].reduce((n, items) => n + items.length, 0);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random sequences agree with the model');
});

t.test('a burst of one caller does not delay another: turns alternate while both wait', async (t) => {
  const queue = new FairQueue<string>();
  for (let i = 0; i < 5; i++) queue.add('flood', `f${i}`);
  queue.add('other', 'o0');
  queue.add('other', 'o1');
  t.same(queue.drain(), ['f0', 'o0', 'f1', 'o1', 'f2', 'f3', 'f4']);
});

t.test('shiftWhere: keys not eligible are passed over and keep their places in turn', async (t) => {
  const queue = new FairQueue<string>();
  for (const [key, item] of [['a', 'a0'], ['b', 'b0'], ['a', 'a1'], ['c', 'c0']] as const) queue.add(key, item);
  t.equal(queue.shiftWhere((key) => key !== 'a'), 'b0', 'a (at its share) passed over');
  t.equal(queue.shiftWhere(() => false), undefined, 'none eligible: nothing taken');
  t.same(queue.drain(), ['a0', 'c0', 'a1'], 'a still first in turn');
});
