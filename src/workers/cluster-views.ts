// What the primary's admin server shows of its workers (workers > 1): /metrics, GET /endpoints,
// GET /debug/tls, GET /upstreams and GET /workers, each gathered from the workers over IPC (asks.ts) with a
// short deadline, so one stopped or stuck worker does not cost the whole answer, and with what
// dead workers had counted carried over (departed-counts.ts). Separate from primary.ts, which forks, starts,
// reloads, drains and replaces the workers: this only reads them, on an operator's request.

import type { Worker } from 'node:cluster';
import type { Asks } from './asks.js';
import type { ClusterMetrics } from './cluster-metrics.js';
import type { DepartedCounts } from './departed-counts.js';
import { mergeEndpoints } from './merge-endpoints.js';
import type { Answers, Ask, WorkerEndpoints, WorkerStatus } from './messages.js';
import { KeptFailures, type TlsFailureEntry } from '../tls-failures/failure-log.js';
import type { UpstreamView } from '../outbound/upstreams-view.js';

/**
 * GET /upstreams with workers > 1: one entry per live worker, in id order. Each worker has its
 * own pools, lookups, sessions and ejections (an address ejected in one is not in another), so
 * the views are listed side by side, not merged: a merge would say which addresses are ejected
 * somewhere, not where. A worker that does not answer in time is marked `unresponsive`, one
 * still starting `starting`, as GET /workers marks them.
 */
export interface WorkerUpstreams {
  readonly workers: ReadonlyArray<{ readonly id: number; readonly upstreams?: readonly UpstreamView[]; readonly starting?: true; readonly unresponsive?: true }>;
}

/**
 * How long a scrape, GET /endpoints or GET /workers waits for a worker: one stopped or stuck
 * worker must not cost the whole answer; the others' are rendered without it.
 */
export const VIEW_ASK_TIMEOUT_MS = 2_000;

/** What the views read of the primary's own state, at the moment they need it. */
export interface ClusterMembers {
  /** The live workers. */
  live(): Worker[];
  /** Workers that said hello: one still booting has served nothing and cannot answer yet. */
  greetedLive(): Worker[];
  /** The worker reported its listeners. */
  listening(id: number): boolean;
  /** The config generation the primary runs. */
  generation(): number;
  /** Workers lost in a crash loop whose replacement waits (restart-policy.ts). */
  pendingRestarts(): PendingRestart[];
}

/** A lost worker's replacement, forked at `at` (epoch ms). */
export interface PendingRestart {
  readonly at: number;
  readonly cause: 'crash' | 'health';
}

export class ClusterViews {
  constructor(
    private readonly members: ClusterMembers,
    private readonly asks: Asks,
    /** What dead workers counted, so the aggregated counts never go down. */
    private readonly departed: DepartedCounts,
    private readonly metricsOf: ClusterMetrics,
    private readonly viewAskTimeoutMs: number,
  ) {}

  async metrics(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const { answers, unresponsive } = await this.asks.gather(this.members.greetedLive(), 'metrics', this.viewAskTimeoutMs, [], {
      saw: (id, answer) => this.departed.sawMetrics(id, answer),
      last: (id) => this.departed.lastOf(id),
    });
    // the departed workers' counts last: each family keeps the live workers' help and aggregator
    return this.metricsOf.render([...answers, this.departed.metrics()], accept, unresponsive);
  }

  async endpoints(): Promise<WorkerEndpoints> {
    const { answers } = await this.asks.gather(this.members.greetedLive(), 'endpoints', this.viewAskTimeoutMs, { endpoints: [], discovery: [] }, {
      saw: (id, answer) => this.departed.sawEndpoints(id, answer),
      last: (id) => this.departed.lastEndpointsOf(id),
    });
    return mergeEndpoints([...answers, this.departed.endpoints()]);
  }

  /**
   * GET /debug/tls: the handshakes fail in the workers (the primary serves no TLS), so each
   * worker that said hello is asked for its last failures, and they are kept by the rule one
   * process keeps its own by (KeptFailures: the newest 100, at most 10 from one address; each
   * worker holds 10 from an address, so a plain merge showed N x 10). Not carried over a worker's death: a
   * troubleshooting list of recent events, not a count (what a dead or silent worker saw is left out).
   */
  async tlsFailures(): Promise<TlsFailureEntry[]> {
    const { answers } = await this.asks.gather(this.members.greetedLive(), 'tls', this.viewAskTimeoutMs, [], { saw: () => undefined, last: () => undefined });
    const kept = new KeptFailures();
    // oldest first, as they happened; ISO times of one clock: their text order is their time order
    for (const entry of answers.flat().sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))) kept.add(entry);
    return kept.recent();
  }

  async upstreams(): Promise<WorkerUpstreams> {
    const workers = await Promise.all(
      this.members.live().map(async (w) => {
        if (!this.members.listening(w.id)) return { id: w.id, starting: true as const };
        // no stand-in from an earlier answer: this is a view of now, and an old one would mislead
        // (one that exits meanwhile is unresponsive too: it has no view to give)
        return this.askView(w, { ask: 'upstreams' }).then(
          (upstreams) => ({ id: w.id, upstreams }),
          () => ({ id: w.id, unresponsive: true as const }),
        );
      }),
    );
    return { workers: workers.sort((a, b) => a.id - b.id) };
  }

  async status(): Promise<unknown> {
    const workers = await Promise.all(
      this.members.live().map(async (w) => {
        // a worker still starting (a restart) cannot answer before it has its config, which a
        // reload round may hold: said at once, not after the ask timeout
        const status: Partial<WorkerStatus> & { starting?: true; unresponsive?: true } = this.members.listening(w.id)
          ? await this.askView(w, { ask: 'status' }).then(
              // its four fields only: the answer's other keys never stand for the primary's (id, listening)
              ({ pid, serial, requests, generation }) => ({ pid, serial, requests, generation }),
              () => ({ pid: w.process.pid ?? 0, ...(w.isDead() ? {} : { unresponsive: true as const }) }),
            )
          : { pid: w.process.pid ?? 0, starting: true };
        return { id: w.id, listening: this.members.listening(w.id), ...status };
      }),
    );
    // each worker's generation next to the primary's: an operator sees at once that they agree
    // a worker waiting out the crash-loop delay has no process to list: its slot says when it comes back
    const waiting = this.members.pendingRestarts().map((p) => ({ restartsAt: new Date(p.at).toISOString(), cause: p.cause }));
    return { generation: this.members.generation(), workers, ...(waiting.length > 0 ? { waiting } : {}), restarts: (await this.metricsOf.restarts.get()).values[0]?.value ?? 0 };
  }

  /** An ask for a view (metrics, endpoints, status): a short deadline, see VIEW_ASK_TIMEOUT_MS. */
  private askView<K extends Ask['ask']>(worker: Worker, ask: Ask & { ask: K }): Promise<Answers[K]> {
    return this.asks.ask<K>(worker, ask, this.viewAskTimeoutMs);
  }
}
