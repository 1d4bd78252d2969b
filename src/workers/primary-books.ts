// What the primary (primary.ts) knows of its workers and of its own run, kept as it goes:
// which workers listen and where, said hello, were forked when, were sent their config; the
// config they run and a reload round deciding; the identity they get; whether the start is
// over, a stop or a drain under way; and the start's pending outcome; and what is read of it
// (live, greeted, serving, generation). WorkerPool extends this class: the fields sit on the
// one pool, declared here with what each one means.

import cluster, { type Worker } from 'node:cluster';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { Address, WorkerConfig } from './messages.js';

export interface Listening {
  readonly inbound?: Address;
  readonly outbound?: Address;
}

export abstract class PrimaryBooks {
  protected readonly listeningWorkers = new Map<number, Listening>();
  /** Workers whose message listener is in place (they said hello). */
  protected readonly greeted = new Set<number>();
  /** When each live worker was forked: one that says no hello in HELLO_TIMEOUT_MS is stuck (health-checks.ts). */
  protected readonly forkedAt = new Map<number, number>();
  /** Workers sent their config: the ones a reload round asks (the others get the round's result at hello). */
  protected readonly configured = new Set<number>();
  /** The config every worker runs or starts on; undefined until start(). */
  protected current: WorkerConfig | undefined;
  /** A reload round that has not decided yet: a worker greeting meanwhile waits for its outcome. */
  protected deciding: Promise<unknown> | undefined;
  protected identity: WorkloadIdentity | undefined;
  protected started = false;
  protected stopping = false;
  /** The drain under way (SIGTERM): a worker greeting after it is told to drain too. */
  protected drainTimeoutMs: number | undefined;
  protected startFailed: ((err: Error) => void) | undefined;
  protected allListening: (() => void) | undefined;
  protected addresses: Listening | undefined;

  /** Some worker listens (it may be serving before the others do: the start is not over). */
  serving(): boolean {
    return this.listeningWorkers.size > 0;
  }

  generation(): number {
    return this.current?.generation ?? 0;
  }

  /** Workers that said hello: one still booting has served nothing and cannot answer yet. */
  protected greetedLive(): Worker[] {
    return this.live().filter((w) => this.greeted.has(w.id));
  }

  protected live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
  }
}
