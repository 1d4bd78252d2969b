// A worker's side of a reload round (reload-round.ts): prepare, then commit or abort, run one
// after the other in the order the primary sent them (so an abort that arrives while its
// prepare is still building drops it once built), and the config generation the worker runs.

import type { ReloadResult } from '../reload-outcome.js';
import type { Sidecar } from '../sidecar.js';
import type { Answers, Ask, WorkerConfig } from './messages.js';

export class ReloadSteps {
  /** The config generation this worker runs; null until it has its first config. */
  generation: number | null = null;
  private prepared: { readonly generation: number; readonly commit: () => ReloadResult } | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly sidecar: Promise<Sidecar>) {}

  started(generation: number): void {
    this.generation = generation;
  }

  run(ask: Ask & { ask: 'prepare' | 'commit' }): Promise<Answers['prepare' | 'commit']> {
    return this.queue(() => (ask.ask === 'prepare' ? this.prepare(ask.next) : this.commit(ask.generation)));
  }

  abort(generation: number): void {
    void this.queue(async () => {
      if (this.prepared?.generation === generation) this.prepared = undefined;
    });
  }

  private queue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async prepare(next: WorkerConfig): Promise<Answers['prepare']> {
    const sidecar = await this.sidecar;
    this.prepared = undefined;
    // the primary planned the change from the generation it holds: from any other one, this
    // worker would end up running something else than the primary says
    if (this.generation !== next.generation - 1) throw new Error(`this worker runs config generation ${String(this.generation)}, the reload is planned from ${next.generation - 1}`);
    this.prepared = { generation: next.generation, commit: await sidecar.prepareFromPrimary(next.config, next.specs) };
    return { generation: next.generation };
  }

  private async commit(generation: number): Promise<Answers['commit']> {
    const prepared = this.prepared;
    this.prepared = undefined;
    if (prepared?.generation !== generation) throw new Error(`config generation ${generation} was not prepared here (it runs ${String(this.generation)})`);
    prepared.commit();
    this.generation = generation;
    return { generation };
  }
}
