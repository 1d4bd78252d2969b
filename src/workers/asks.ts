// The primary's asks to its workers (workers > 1): each ask gets an id and a deadline, and an
// answer settles it only when it comes from the worker that was asked (a worker cannot answer,
// say, a reload's prepare for another one) and only when it has the shape and a sane size
// (answer-shapes.ts: a worker's answer is held and rendered by the primary).

import type { Worker } from 'node:cluster';
import type { Answers, Ask, ToWorker } from './messages.js';
import { AskTimeout, WorkerGone } from './reload-round.js';
import { answerRefusal } from './answer-shapes.js';

/** How long an ask (reload, status, endpoints) may take before it is answered with an error. */
export const ASK_TIMEOUT_MS = 10_000;

interface Pending {
  readonly worker: number;
  readonly ask: Ask['ask'];
  resolve(answer: unknown): void;
  reject(err: Error): void;
}

export class Asks {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** `refused`: told of each answer refused for its shape or size (answer-shapes.ts), which the asker then takes as no answer. */
  constructor(
    private readonly send: (worker: Worker, message: ToWorker) => void,
    private readonly refused: (worker: Worker, ask: Ask['ask'], why: string) => void = () => undefined,
  ) {}

  ask<K extends Ask['ask']>(worker: Worker, ask: Ask & { ask: K }, timeoutMs = ASK_TIMEOUT_MS): Promise<Answers[K]> {
    const id = this.nextId++;
    if (!worker.isConnected()) return Promise.reject(new WorkerGone(`worker ${worker.id} is not connected`));
    return new Promise<Answers[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AskTimeout(`worker ${worker.id} did not answer ${ask.ask} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = <T>(fn: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        fn(value);
      };
      this.pending.set(id, { worker: worker.id, ask: ask.ask, resolve: settle((answer) => resolve(answer as Answers[K])), reject: settle(reject) });
      this.send(worker, { type: 'meshcar:ask', id, ...ask });
    });
  }

  /** A worker's answer: ignored unless it answers an ask made of that very worker. */
  answered(worker: Worker, message: { readonly id: number; readonly answer?: unknown; readonly error?: string }): void {
    const pending = this.pending.get(message.id);
    if (!pending || pending.worker !== worker.id) return;
    this.pending.delete(message.id);
    if (message.error !== undefined) return pending.reject(new Error(String(message.error)));
    const refused = answerRefusal(pending.ask, message.answer);
    if (refused) {
      this.refused(worker, pending.ask, refused);
      pending.reject(new Error(`worker ${worker.id} answered ${pending.ask} with ${refused}`));
    }
    else pending.resolve(message.answer);
  }

  /**
   * Every worker's answer to a view ask. One that does not answer in time is counted as
   * unresponsive and its `last` answer stands in, so no total goes down; one that died
   * meanwhile counts as `empty`, as what it last answered is in the departed counts from its
   * exit on (departed-counts.ts); `saw` is told every answer.
   */
  async gather<K extends 'metrics' | 'endpoints' | 'tls'>(
    workers: readonly Worker[],
    ask: K,
    timeoutMs: number,
    empty: Answers[K],
    known: { saw(id: number, answer: Answers[K]): void; last(id: number): Answers[K] | undefined },
  ): Promise<{ answers: Array<Answers[K]>; unresponsive: number }> {
    let unresponsive = 0;
    const answers = await Promise.all(
      workers.map((w) =>
        this.ask<K>(w, { ask } as Ask & { ask: K }, timeoutMs).then(
          (answer) => {
            known.saw(w.id, answer);
            return answer;
          },
          () => {
            if (w.isDead()) return empty;
            unresponsive++;
            return known.last(w.id) ?? empty;
          },
        ),
      ),
    );
    return { answers: answers.map((answer, i) => (workers[i]?.isDead() ? empty : answer)), unresponsive };
  }

  /** The worker is gone: what was asked of it is failed at once, not at its deadline. */
  gone(worker: number): void {
    for (const [id, pending] of this.pending) {
      if (pending.worker !== worker) continue;
      this.pending.delete(id);
      pending.reject(new Error(`worker ${worker} exited before it answered`));
    }
  }
}
