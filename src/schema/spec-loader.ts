// Loads a spec's document in a worker thread, so a reload (or a start with a large spec) never
// holds the event loop: the OpenAPI parser validates the whole document in one synchronous
// piece (~0.2-0.5 s for 3,000 operations), during which traffic and the admin port would
// wait. The worker also confines the parser's memory (resourceLimits): a spec that needs more
// than that is refused and the sidecar goes on. The parser is loaded in the worker only. One
// worker serves the loads that come together (a start or reload with several specs), one at a
// time, and ends when it has been idle for a moment: no thread and heap kept for reloads.

import { Worker } from 'node:worker_threads';
import { describeError } from '../errors.js';
import type { BacktrackingPatterns } from './backtracking-patterns.js';
import type { OpenApiDocument } from './spec-document.js';
import { SpecError } from './spec-error.js';
import type { SpecLoadReply, SpecLoadRequest } from './spec-load-worker.js';

export type { OpenApiDocument } from './spec-document.js';

/** A spec's dereferenced document, and the patterns in it only the backtracking regex engine can run. */
export interface LoadedSpecDocument {
  readonly document: OpenApiDocument;
  readonly backtracking: BacktrackingPatterns;
  /** The files the spec's $refs named, as read (absolute paths; not the spec itself). */
  readonly refsRead: readonly string[];
}

/** The worker's heap: a 5 MiB spec (the file cap) dereferenced and validated fits with room to spare. */
const WORKER_HEAP_MB = 512;
/** How long an idle worker waits for another load before it ends. */
const WORKER_IDLE_MS = 2_000;

interface Pending {
  readonly file: string;
  resolve(loaded: LoadedSpecDocument): void;
  reject(err: SpecError): void;
}

let worker: Worker | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;
/** In the order asked, which is the order the worker reads them in. */
const pending = new Map<number, Pending>();

/** The dereferenced document, or a SpecError naming the file and the JSON pointer at fault. */
export function loadSpecDocument(file: string): Promise<LoadedSpecDocument> {
  return new Promise((resolve, reject) => {
    let reader: Worker;
    try {
      reader = worker ?? startWorker();
    } catch (err) {
      reject(new SpecError(file, '', `could not be read: no thread to read it in (${describeError(err)})`));
      return;
    }
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    const id = nextId++;
    pending.set(id, { file, resolve, reject });
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
      if ('doc' in reply) load.resolve({ document: reply.doc as OpenApiDocument, backtracking: reply.backtracking, refsRead: reply.refsRead });
      else load.reject(new SpecError(reply.error.file, reply.error.pointer, reply.error.detail));
    }
    if (pending.size === 0 && worker === started) idle(started);
  });
  // a reply this thread cannot take in: the worker is dropped like one that failed
  started.on('messageerror', (err: Error) => ended(started, `could not be passed on: ${describeError(err)}`));
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

/**
 * The worker is gone (out of memory, crashed, or a reply that could not be taken in). It reads
 * one spec at a time, in order: the first pending one is what it was reading, and fails with
 * the reason; the others were not read yet and go to a new worker.
 */
function ended(reader: Worker, detail: string): void {
  if (worker !== reader) return;
  worker = undefined;
  void reader.terminate();
  const [first] = pending;
  if (first === undefined) return;
  const [firstId, load] = first;
  pending.delete(firstId);
  load.reject(new SpecError(load.file, '', detail));
  if (pending.size === 0) return;
  let next: Worker;
  try {
    next = startWorker();
  } catch (err) {
    for (const [id, rest] of pending) {
      pending.delete(id);
      rest.reject(new SpecError(rest.file, '', `could not be read: no thread to read it in (${describeError(err)})`));
    }
    return;
  }
  next.ref();
  for (const [id, rest] of pending) next.postMessage({ id, file: rest.file } satisfies SpecLoadRequest);
}

/**
 * The worker's module. Built (dist/), the .js beside this one: dist/schema/spec-load-worker.js
 * for tsc's module per file, dist/spec-load-worker.js for the command's bundle (this code then
 * runs from a dist/chunk-*.js, and make build writes the worker's bundle there). Run from the
 * TypeScript sources (the tests, under tsx), a worker does not inherit the parent's loader: a
 * bootstrap registers tsx in it first.
 */
function workerEntry(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./spec-load-worker.js', import.meta.url);
  const entry = new URL('./spec-load-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}
