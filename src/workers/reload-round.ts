// One reload of the workers (workers > 1), in two phases, so that a config the primary checked
// runs in every worker or in none: each worker prepares it (builds everything that can fail,
// applies nothing) and answers; only when every one has prepared are they told to commit, and
// a worker that refuses or does not answer in time makes every worker drop it (abort). After the
// commits are sent the new generation is the truth: a worker that does not confirm its commit
// (stopped, stuck) may or may not have swapped it in, so it is restarted (recycled) and comes
// back on that generation, and the answer says the reload is partial, not that nothing changed.
// A worker that does not answer the prepare in time and then misses a ping too (stopped, or its
// event loop stuck) is restarted, on the kept generation: it serves nobody meanwhile (new
// connections reach it in turn and hang), and left as it is it would abort every later reload.
// One that answers the ping is late, not stuck (a large spec's compile yields): it is kept,
// once; late again at the very next round, it is restarted, unless every worker was late.
// A round the sidecar's stop (SIGTERM) overtakes commits nothing it has not committed yet: the
// workers are draining, one that drained and exited would count as "did not confirm" and the
// answer say partial for a config that never runs again; it is aborted, as one process answers.

import type { Worker } from 'node:cluster';
import type { Answers, Ask, ToWorker, WorkerConfig } from './messages.js';

/** An ask the worker did not answer in time (as opposed to one it refused, or a worker gone). */
export class AskTimeout extends Error {}

/**
 * An ask of a worker whose channel had closed before it was asked (it is exiting): unlike one
 * that dies while it prepares, which the config may have killed, it has nothing to say of it.
 */
export class WorkerGone extends Error {}

/** What a round needs of the pool that runs it. */
export interface RoundIo {
  ask<K extends Ask['ask']>(worker: Worker, ask: Ask & { ask: K }, timeoutMs?: number): Promise<Answers[K]>;
  send(worker: Worker, message: ToWorker): void;
  /** The round has decided to commit: `next` is the config the primary holds from now on. */
  adopt(next: WorkerConfig): void;
  /** Restarts a worker whose state is unknown; the replacement starts on the adopted config. */
  recycle(worker: Worker, reason: string): void;
  /** Whether the worker answers a health ping now (its event loop turns). */
  answersPing(worker: Worker): Promise<boolean>;
  /** The workers kept as late at a prepare, by id, with the number of the round (the pool's, across rounds). */
  readonly late: Map<number, number>;
  /** This round's number: one more than the last round's. */
  readonly round: number;
  /** The primary is stopping (drain or close): nothing is committed or restarted from then on. */
  stopping(): boolean;
}

/** Why a round the stop overtook is not run: the words one process answers with while draining. */
export const STOPPING_MESSAGE = 'the sidecar is draining (shutting down): the reload is not run';

/** Why a round with no worker to ask is not run (every one died, or waits out its crash-loop delay). */
export const NO_WORKER_MESSAGE = 'no worker is running to check the config (every one is being restarted): nothing was applied; reload again once GET /ready answers 200';

/** How a round ended: `messages` name each worker that refused, did not answer or did not confirm. */
export type RoundOutcome =
  | { readonly outcome: 'applied'; readonly generation: number }
  | { readonly outcome: 'aborted'; readonly generation: number; readonly messages: readonly string[]; readonly stopping?: true }
  | { readonly outcome: 'partial'; readonly generation: number; readonly messages: readonly string[]; readonly stopping?: true };

/** Runs one round over `workers` (the ones running `next.generation - 1`); `kept` is that generation. `prepareMs`: each worker's bound for the prepare (prepare-deadline.ts). */
export async function reloadRound(workers: readonly Worker[], next: WorkerConfig, io: RoundIo, prepareMs?: number): Promise<RoundOutcome> {
  const kept = next.generation - 1;
  if (io.stopping()) return { outcome: 'aborted', generation: kept, messages: [STOPPING_MESSAGE], stopping: true };
  // none to check it: the replacements would start on a config no worker prepared (a spec that
  // compiles in the primary but not in a worker would then fail every start)
  if (workers.length === 0) return { outcome: 'aborted', generation: kept, messages: [NO_WORKER_MESSAGE] };
  const failedTo = (phase: string, worker: Worker) => (err: Error) => `worker ${worker.id} (pid ${worker.process.pid ?? '?'}) did not ${phase}: ${err.message}`;
  const outcomes = await Promise.all(workers.map((w) => io.ask(w, { ask: 'prepare', next }, prepareMs).then(() => undefined, (err: Error) => err)));
  const allLate = outcomes.every((err) => err instanceof AskTimeout);
  const prepared = await Promise.all(
    workers.map(async (worker, i) => {
      const err = outcomes[i];
      if (err instanceof WorkerGone) return err; // sorted below
      // an answer of any kind, in time: not late (whatever an earlier round found)
      if (!(err instanceof AskTimeout)) {
        io.late.delete(worker.id);
        return err === undefined ? undefined : failedTo('prepare the reload', worker)(err);
      }
      // late is not stuck: one still compiling a large spec (the compile yields, so it answers
      // pings) is kept, and drops the prepare when the abort comes; killing every late worker
      // at once was an outage whenever the bound fell short of the workers' time. Late at the
      // round just before too, it is restarted: a prepare that never ends (its loop turning)
      // holds every later prepare and abort behind it in the worker's queue. Never every
      // worker, though: all late twice is a bound too short for all, not all hung
      const lateBefore = io.late.get(worker.id) === io.round - 1;
      if ((!lateBefore || allLate) && (await io.answersPing(worker))) {
        io.late.set(worker.id, io.round);
        return `${failedTo('prepare the reload', worker)(err)} (it answers pings: kept, still preparing; it drops this config when done)`;
      }
      io.late.delete(worker.id);
      io.recycle(worker, `it did not answer the prepare of config generation ${next.generation}`);
      return failedTo('prepare the reload', worker)(err);
    }),
  );
  // a worker already gone when asked holds no half-made config and never saw this one: its
  // replacement starts on what the primary holds once the round decides, so the others'
  // verdict stands (one crash beside a SIGHUP threw the whole change away, and only a log line
  // said so). One that dies while preparing still refuses: the config may be what killed it.
  // Not when every worker is gone: then none has checked the config
  const allGone = prepared.every((m) => m instanceof WorkerGone);
  const refusals: string[] = [];
  const committing: Worker[] = [];
  prepared.forEach((m, i) => {
    const worker = workers[i] as Worker;
    if (!(m instanceof WorkerGone)) committing.push(worker);
    if (typeof m === 'string') refusals.push(m);
    else if (m instanceof WorkerGone && allGone) refusals.push(failedTo('prepare the reload', worker)(m));
  });
  // the stop came while the workers prepared: they drain (or have drained and exited) instead
  const stopping = io.stopping();
  if (stopping) refusals.push(STOPPING_MESSAGE);
  if (refusals.length > 0) {
    // a worker that did not answer gets the abort after the prepare (one channel, in order):
    // when it runs again it prepares, then drops it, and never commits it
    for (const worker of workers) io.send(worker, { type: 'meshcar:abort', generation: next.generation });
    return stopping ? { outcome: 'aborted', generation: kept, messages: refusals, stopping: true } : { outcome: 'aborted', generation: kept, messages: refusals };
  }
  io.adopt(next);
  const unconfirmed: string[] = [];
  await Promise.all(
    committing.map((w) =>
      io.ask(w, { ask: 'commit', generation: next.generation }).then(
        (answer) => {
          if (answer.generation !== next.generation) throw new Error(`it runs generation ${answer.generation}`);
        },
      ).catch((err: Error) => {
        // gone meanwhile: its replacement starts on the config just adopted
        if (err instanceof WorkerGone) return;
        unconfirmed.push(failedTo(`confirm generation ${next.generation}`, w)(err));
        io.recycle(w, `it did not confirm config generation ${next.generation}`);
      }),
    ),
  );
  if (unconfirmed.length === 0) return { outcome: 'applied', generation: next.generation };
  // the stop came while they committed: the ones that did not confirm are not restarted (recycle does nothing then)
  return io.stopping() ? { outcome: 'partial', generation: next.generation, messages: unconfirmed, stopping: true } : { outcome: 'partial', generation: next.generation, messages: unconfirmed };
}
