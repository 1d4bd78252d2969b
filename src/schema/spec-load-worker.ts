// The worker thread that reads specs (spec-loader.ts starts it): for each request, reads,
// dereferences and validates the document of the file named, then posts it back, or where it
// is wrong. One request at a time, in the order asked.

import { parentPort } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { readSpecDocument } from './spec-document.js';
import { SpecError } from './spec-error.js';

export interface SpecLoadRequest {
  readonly id: number;
  readonly file: string;
}

/** What the worker posts: the document, or the SpecError's parts (an Error's class does not cross threads). */
export type SpecLoadReply = { readonly id: number } & ({ readonly doc: unknown } | { readonly error: { readonly file: string; readonly pointer: string; readonly detail: string } });

let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', ({ id, file }: SpecLoadRequest) => {
  queue = queue.then(async () => {
    let reply: SpecLoadReply;
    try {
      reply = { id, doc: await readSpecDocument(file) };
    } catch (err) {
      reply = { id, error: err instanceof SpecError ? { file: err.file, pointer: err.pointer, detail: err.detail } : { file, pointer: '', detail: describeError(err) } };
    }
    parentPort?.postMessage(reply);
  });
});
