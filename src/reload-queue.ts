// How reloads (SIGHUP, POST /reload) are queued for the sidecar (sidecar.ts): two never run at
// once, and requests never pile up. One that comes while a reload runs waits for the next one,
// which starts when the running one ends and reads the file then; everything asked for
// meanwhile shares it and its answer. A storm of N requests costs two reloads, not N (each
// reads the file and every spec, and blocks the event loop while it parses them).

import type { Logger } from 'pino';
import type { ReloadResult } from './reload-outcome.js';

export class ReloadQueue {
  /** The reload running now, if any. */
  private running: Promise<ReloadResult> | undefined;
  /** The one reload waiting for it: every request that comes meanwhile shares it (see next()). */
  private queued: Promise<ReloadResult> | undefined;

  /** `run`: one whole reload, which reads the file when it starts. */
  constructor(
    private readonly run: () => Promise<ReloadResult>,
    private readonly logger: Logger,
  ) {}

  /** The reload that answers a request made now: one started at once if none runs, else the one waiting for it. */
  next(): Promise<ReloadResult> {
    const running = this.running;
    if (!running && !this.queued) return this.start();
    this.logger.debug({ component: 'reload' }, 'reload asked for while one runs: joins the next one');
    this.queued ??= Promise.resolve(running)
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<ReloadResult> {
    const run = this.run();
    this.running = run;
    const done = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(done, done);
    return run;
  }
}
