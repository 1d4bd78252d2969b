// Test helper: how many timer lists Node keeps now (TimersList objects in a heap snapshot), one
// per timer duration in use, for the tests that check closed connections leave none behind
// (src/timer-clear.ts). A snapshot takes a second or two: one before, one after.

import v8 from 'node:v8';

export async function timerLists(): Promise<number> {
  const chunks: string[] = [];
  for await (const chunk of v8.getHeapSnapshot()) chunks.push(String(chunk));
  const snapshot = JSON.parse(chunks.join('')) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[]; strings: string[] };
  const fields = snapshot.snapshot.meta.node_fields.length;
  const name = snapshot.strings.indexOf('TimersList');
  let n = 0;
  // a node's name is its second field
  for (let i = 1; i < snapshot.nodes.length; i += fields) if (snapshot.nodes[i] === name) n++;
  return n;
}
