// The worker thread that reads specs (spec-loader.ts starts it): for each request, reads,
// dereferences and validates the document of the file named, finds the patterns the
// linear-time regex engine cannot run, and posts both back, or where the spec is wrong. One
// request at a time, in the order asked.

import { parentPort } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { backtrackingPatterns, type BacktrackingPatterns } from './backtracking-patterns.js';
import { readSpecDocument } from './spec-document.js';
import { SpecError } from './spec-error.js';

export interface SpecLoadRequest {
  readonly id: number;
  readonly file: string;
}

export interface SpecLoadFailure {
  readonly file: string;
  readonly pointer: string;
  readonly detail: string;
}

/** What the worker posts: the document, or the SpecError's parts (an Error's class does not cross threads). */
export type SpecLoadReply = { readonly id: number } & ({ readonly doc: unknown; readonly backtracking: BacktrackingPatterns; readonly refsRead: readonly string[] } | { readonly error: SpecLoadFailure });

async function answer({ id, file }: SpecLoadRequest): Promise<SpecLoadReply> {
  try {
    let refsRead: readonly string[] = [];
    const doc = await readSpecDocument(file, (files) => (refsRead = files));
    return { id, doc, backtracking: backtrackingPatterns(doc), refsRead };
  } catch (err) {
    return { id, error: err instanceof SpecError ? { file: err.file, pointer: err.pointer, detail: err.detail } : { file, pointer: '', detail: describeError(err) } };
  }
}

let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (request: SpecLoadRequest) => {
  queue = queue.then(async () => {
    const reply = await answer(request);
    try {
      parentPort?.postMessage(reply);
    } catch (err) {
      // a document that cannot be cloned: still an answer, so the load settles and the queue goes on
      parentPort?.postMessage({ id: request.id, error: { file: request.file, pointer: '', detail: `could not be passed on: ${describeError(err)}` } } satisfies SpecLoadReply);
    }
  });
});
