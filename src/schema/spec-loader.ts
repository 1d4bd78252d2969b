// Loads a spec's document in a worker thread, so a reload (or a start with a large spec) never
// holds the event loop: the OpenAPI parser validates the whole document in one synchronous
// piece (~0.5 s for 3,000 operations), during which traffic and the admin port would wait.
// The worker also confines the parser's memory (resourceLimits): a spec that needs more than
// that is refused and the sidecar goes on. The parser is loaded in the worker only. One worker
// serves the loads that come together (a start or reload with several specs) and ends when it
// has been idle for a moment: a sidecar does not keep a thread and its heap for reloads.

import { Worker } from 'node:worker_threads';
import { describeError } from '../errors.js';
import type { OpenApiDocument } from './spec-document.js';
import { SpecError } from './spec-error.js';
import type { SpecLoadReply, SpecLoadRequest } from './spec-load-worker.js';

export type { OpenApiDocument } from './spec-document.js';

/** The worker's heap: a 5 MiB spec (the file cap) dereferenced and validated fits with room to spare. */
const WORKER_HEAP_MB = 512;
/** How long an idle worker waits for another load before it ends. */
const WORKER_IDLE_MS = 2_000;

interface Pending {
  readonly file: string;
  resolve(doc: OpenApiDocument): void;
  reject(err: SpecError): void;
}

let worker: Worker | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

/** The dereferenced document, or a SpecError naming the file and the JSON pointer at fault. */
export function loadSpecDocument(file: string): Promise<OpenApiDocument> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { file, resolve, reject });
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    const reader = worker ?? startWorker();
    // a load in flight keeps the process alive (`meshcar check` has nothing else to wait for)
    reader.ref();
    reader.postMessage({ id, file } satisfies SpecLoadRequest);
  });
}

function startWorker(): Worker {
  const started = new Worker(workerEntry(), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  worker = started;
  started.on('message', (reply: SpecLoadReply) => {
    const load = pending.get(reply.id);
    pending.delete(reply.id);
    if (load !== undefined) {
      if ('doc' in reply) load.resolve(reply.doc as OpenApiDocument);
      else load.reject(new SpecError(reply.error.file, reply.error.pointer, reply.error.detail));
    }
    if (pending.size === 0 && worker === started) idle(started);
  });
  started.on('error', (err: Error & { code?: string }) => {
    const detail = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `needs more than ${WORKER_HEAP_MB} MB to read and validate` : `could not be read: ${describeError(err)}`;
    ended(started, detail);
  });
  started.on('exit', (code) => ended(started, `could not be read: the reading thread stopped (exit code ${code})`));
  return started;
}

/** Nothing to do: the worker no longer holds the process, and ends unless a load comes soon. */
function idle(reader: Worker): void {
  reader.unref();
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    if (worker === reader && pending.size === 0) {
      worker = undefined;
      void reader.terminate();
    }
  }, WORKER_IDLE_MS);
  idleTimer.unref();
}

/** The worker is gone (out of memory, or ended): the loads it had fail, the next one starts a new worker. */
function ended(reader: Worker, detail: string): void {
  if (worker !== reader) return;
  worker = undefined;
  for (const [id, load] of pending) {
    pending.delete(id);
    load.reject(new SpecError(load.file, '', detail));
  }
}

/**
 * The worker's module. Built (dist/), the .js beside this one; run from the TypeScript sources
 * (the tests, under tsx), a worker does not inherit the parent's loader: a bootstrap registers
 * tsx in it first.
 */
function workerEntry(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./spec-load-worker.js', import.meta.url);
  const entry = new URL('./spec-load-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}
