// Test helper: whether objects are let go, by forced garbage collections. Each GC runs in a job
// of its own: a deref() keeps its target alive to the end of the job it ran in. Bounded: ten
// rounds, then the answer is no.

import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether every target is collected, after a few forced GCs. */
export async function allCollected(refs: ReadonlyArray<WeakRef<object>>): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    await tick(20);
    gc();
    await tick(20);
    if (refs.every((ref) => ref.deref() === undefined)) return true;
  }
  return false;
}

/** Whether `ref`'s target is collected, after a few forced GCs. */
export function collected(ref: WeakRef<object>): Promise<boolean> {
  return allCollected([ref]);
}
