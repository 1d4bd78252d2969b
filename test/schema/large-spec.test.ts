// A spec of thousands of operations takes seconds to compile (Ajv compiles synchronously:
// 20,000 operations took ~17 s), and a reload that compiled it held the event loop that long:
// traffic and the admin port waited. Now the compiler gives the event loop a turn every 20 ms,
// and the OpenAPI parser, which validates the whole document in one synchronous piece (~0.5 s
// here), runs in a worker thread: a timer due every 10 ms keeps firing while a 1,500-operation
// spec is read, validated and compiled.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { loadSpecDocument, type OpenApiDocument } from '../../src/schema/spec-loader.js';
import { readSpecDocument } from '../../src/schema/spec-document.js';
import { SpecError } from '../../src/schema/spec-error.js';

const OPERATIONS = 1_500;

function bigSpec(): string {
  const paths: Record<string, unknown> = {};
  for (let i = 0; i < OPERATIONS; i++) {
    paths[`/p${i}/{id}`] = {
      get: {
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
          { name: 'q', in: 'query', schema: { type: 'string', maxLength: 64 } },
        ],
        responses: { '200': { description: 'ok' } },
      },
    };
  }
  return JSON.stringify({ openapi: '3.0.3', info: { title: 'big', version: '1' }, paths });
}

/** Runs `work` with a timer due every 10 ms: the longest the event loop made it wait, and how long `work` took. */
async function eventLoopWaits<T>(work: () => Promise<T>): Promise<{ result: T; longestGap: number; tookMs: number }> {
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 10);
  const started = performance.now();
  const result = await work();
  const tookMs = performance.now() - started;
  clearInterval(ticker);
  longestGap = Math.max(longestGap, performance.now() - last); // a wait the ticker never saw end
  return { result, longestGap, tookMs };
}

t.test(`compiling ${OPERATIONS} operations leaves the event loop free`, async (t) => {
  const file = join(t.testdir(), 'big.json');
  await writeFile(file, bigSpec());
  const { document: doc } = await loadSpecDocument(file);
  const { result: spec, longestGap, tookMs } = await eventLoopWaits(() => CompiledSpec.compile(file, doc));
  t.equal(spec.operations.length, OPERATIONS, 'every operation compiled');
  t.equal(spec.check('GET', '/p1499/7', '', {}, false).violation, undefined, 'and in use');
  // a fixed 400 ms, or a tenth of the compile on a machine so loaded that the process waits for a
  // core (70 s compiles with 515 ms gaps seen): a compile in one piece holds the loop for all of it
  t.ok(longestGap < Math.max(400, tookMs / 10), `the longest the event loop waited: ${longestGap.toFixed(0)} ms, in a compile of ${tookMs.toFixed(0)} ms`);
});

t.test(`reading and validating ${OPERATIONS} operations leaves the event loop free (a worker thread)`, async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'big.json');
  await writeFile(file, bigSpec());
  // the first load also starts the worker (and, from the sources, its TypeScript loader)
  await loadSpecDocument(file);
  // the time the event loop was busy (not waiting in the poll phase) during a load, against a
  // read of the same document here: a timer's lateness would also count the machine's other
  // work (two cores, tests in parallel); this counts what ran in this thread, and comparing
  // the two in the same conditions keeps the machine's speed out of it. In the event loop the
  // parser keeps it busy ~200 ms (unloaded); through the worker it only takes in the document
  // (a structured clone). Three of each, the least: a collection of garbage can fall in one.
  const busyMs = async (load: () => Promise<OpenApiDocument>) => {
    const before = performance.eventLoopUtilization();
    const doc = await load();
    t.equal(Object.keys(doc.paths ?? {}).length, OPERATIONS, 'the whole document');
    return performance.eventLoopUtilization(before).active;
  };
  const worker: number[] = [];
  const here: number[] = [];
  for (let i = 0; i < 3; i++) {
    worker.push(await busyMs(() => loadSpecDocument(file).then((l) => l.document)));
    here.push(await busyMs(() => readSpecDocument(file)));
  }
  const [least, leastHere] = [Math.min(...worker), Math.min(...here)];
  t.ok(least < leastHere / 2, `the event loop was busy ${worker.map((ms) => ms.toFixed(0)).join(', ')} ms per load through the worker, ${here.map((ms) => ms.toFixed(0)).join(', ')} ms reading it here`);
  // a spec that is wrong is still refused with where: the error crosses the thread whole
  const wrong = join(dir, 'wrong.json');
  await writeFile(wrong, JSON.stringify({ openapi: '3.0.3', info: { title: 'w', version: '1' }, paths: { '/a': { get: { responses: { '200': { description: 'ok' } }, parameters: [{ name: 'x', in: 'nowhere' }] } } } }));
  const err = await loadSpecDocument(wrong).catch((e: unknown) => e);
  t.ok(err instanceof SpecError, 'a SpecError');
  t.match(err, { file: wrong, pointer: /^\/paths\/~1a\/get\/parameters\/0/ }, 'naming the file and the node at fault');
  // loads that come together share the worker and each gets its own answer
  const [a, b] = await Promise.all([loadSpecDocument(file), loadSpecDocument(wrong).catch((e: unknown) => e)]);
  t.equal(Object.keys(a.document.paths ?? {}).length, OPERATIONS);
  t.ok(b instanceof SpecError);
});
