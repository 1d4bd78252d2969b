// A reload round (src/workers/reload-round.ts) with a worker already gone when asked: its
// channel closed (killed, exiting) before the primary's exit handler took it off the list.
// It never saw the config and holds nothing of it; its replacement starts on what the primary
// holds once the round decides. Such a worker made the whole round abort: one crash beside a
// SIGHUP threw the change away, with only a log line to say so (a hunt reproduced it in 3 of 6
// reloads sent as a worker was SIGKILLed). A worker that dies while it prepares still aborts
// the round (the config may be what killed it), and so does a round whose every worker is
// gone, or that has none to ask (none checked the config). The round over its io, as the primary runs it, with the
// workers' answers scripted: the race with a real worker's exit is not reproducible on cue.

import t from 'tap';
import type { Worker } from 'node:cluster';
import { NO_WORKER_MESSAGE, reloadRound, WorkerGone, type RoundIo } from '../../src/workers/reload-round.js';
import type { WorkerConfig } from '../../src/workers/messages.js';

const worker = (id: number) => ({ id, process: { pid: 1000 + id } }) as unknown as Worker;
const NEXT = { generation: 2 } as unknown as WorkerConfig;

/** An io whose asks answer per worker and phase: 'ok', 'gone' (WorkerGone), or 'died' (an exit mid-ask). */
function scripted(answers: Record<string, 'ok' | 'gone' | 'died'>) {
  const asked: string[] = [];
  const recycled: number[] = [];
  let adopted = false;
  const io: RoundIo = {
    ask: ((w: Worker, ask: { ask: string }) => {
      asked.push(`${ask.ask} ${w.id}`);
      const answer = answers[`${ask.ask} ${w.id}`] ?? 'ok';
      if (answer === 'gone') return Promise.reject(new WorkerGone(`worker ${w.id} is not connected`));
      if (answer === 'died') return Promise.reject(new Error(`worker ${w.id} exited before it answered`));
      return Promise.resolve(ask.ask === 'commit' ? { generation: 2 } : {});
    }) as RoundIo['ask'],
    send: () => undefined,
    recycle: (w) => void recycled.push(w.id),
    answersPing: async () => true,
    late: new Map(),
    round: 1,
    adopt: () => void (adopted = true),
    stopping: () => false,
  };
  return { io, asked, recycled, adopted: () => adopted };
}

t.test('a worker gone before it was asked to prepare: the others apply the reload', async (t) => {
  const run = scripted({ 'prepare 2': 'gone' });
  const outcome = await reloadRound([worker(1), worker(2)], NEXT, run.io);
  t.same(outcome, { outcome: 'applied', generation: 2 }, 'applied');
  t.ok(run.adopted(), 'the primary holds the new config (the replacement starts on it)');
  t.same(run.asked, ['prepare 1', 'prepare 2', 'commit 1'], 'the gone worker is not asked to commit');
  t.same(run.recycled, [], 'nothing restarted for it: its exit does that');
});

t.test('a worker gone before it was asked to commit: applied, not partial', async (t) => {
  const run = scripted({ 'commit 2': 'gone' });
  t.same(await reloadRound([worker(1), worker(2)], NEXT, run.io), { outcome: 'applied', generation: 2 });
  t.same(run.recycled, [], 'not recycled');
});

t.test('a worker that dies while it prepares still aborts the round', async (t) => {
  const run = scripted({ 'prepare 2': 'died' });
  const outcome = await reloadRound([worker(1), worker(2)], NEXT, run.io);
  t.match(outcome, { outcome: 'aborted', generation: 1, messages: ['worker 2 (pid 1002) did not prepare the reload: worker 2 exited before it answered'] });
  t.notOk(run.adopted(), 'the old config is kept');
});

t.test('no worker to ask (every one died, or waits out its crash-loop delay): the round aborts, nothing asked', async (t) => {
  const run = scripted({});
  const outcome = await reloadRound([], NEXT, run.io);
  t.same(outcome, { outcome: 'aborted', generation: 1, messages: [NO_WORKER_MESSAGE] });
  t.notOk(run.adopted(), 'the old config is kept: the replacements start on it');
  t.same(run.asked, [], 'nothing asked');
});

t.test('every worker gone: the round aborts, as none checked the config', async (t) => {
  const run = scripted({ 'prepare 1': 'gone', 'prepare 2': 'gone' });
  const outcome = await reloadRound([worker(1), worker(2)], NEXT, run.io);
  t.match(outcome, { outcome: 'aborted', generation: 1 });
  t.same((outcome as { messages: string[] }).messages, ['worker 1 (pid 1001) did not prepare the reload: worker 1 is not connected', 'worker 2 (pid 1002) did not prepare the reload: worker 2 is not connected']);
  t.notOk(run.adopted(), 'the old config is kept');
});
