// With workers > 1 the primary reads the specs and sends each worker the dereferenced document
// (src/workers/): sent as JSON, a schema that many operations $ref was copied once per use, and
// each worker compiled every copy (Ajv compiles a schema object once). A spec with one
// 300-property schema used by 400 operations went to each worker as ~4.8 MB and took each
// ~15 s to compile, one core each, before the sidecar was ready. On a structured-clone channel
// the targets stay shared: the workers are ready in the time of a spec-less start, and the
// spec holds in both.

import t from 'tap';
import http2 from 'node:http2';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchSidecar } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** CPU seconds (user + system) a process has used, from /proc: what a busy machine does not inflate, as it does wall time. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function sharedSchemaSpec(operations: number, properties: number): string {
  const props = Object.fromEntries(Array.from({ length: properties }, (_, i) => [`f${i}`, { type: 'string', maxLength: 40 }]));
  const paths: Record<string, unknown> = {};
  for (let i = 0; i < operations; i++) {
    // the last is the echo app's /echo, so a call that passes reaches the app and comes back
    paths[i === operations - 1 ? '/echo' : `/r${i}`] = { post: { requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Big' } } } }, responses: { '200': { description: 'ok' } } } };
  }
  return JSON.stringify({ openapi: '3.1.0', info: { title: 'shared', version: '1' }, components: { schemas: { Big: { type: 'object', properties: props, additionalProperties: false } } }, paths });
}

t.test('workers: 2 are ready promptly on a spec whose one schema 400 operations share, and enforce it', async (t) => {
  const spec = join(t.testdir(), 'shared.json');
  await writeFile(spec, sharedSchemaSpec(400, 300));
  const started = performance.now();
  const launched = await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}`, openapi: `{spec: ${spec}, mode: enforce}` }, extraYaml: 'workers: 2' });
  t.teardown(() => launched.stop('SIGKILL'));
  const orders = await launched.ready(30_000);
  const readyMs = performance.now() - started;
  const workers = (await workersOf(orders)).workers;
  t.equal(workers.filter((w) => w.listening).length, 2, 'both workers listen');
  // each worker compiled the schema once: a spec-less start takes ~1-2 s here; copied per use,
  // ~15 s of one core each. Judged on the workers' CPU: the wall time also counts whatever else
  // the machine runs (10.1 s once, in a run beside another)
  const cpu = await Promise.all(workers.map((w) => cpuSeconds(w.pid)));
  t.ok(cpu.every((s) => s < 5), `each worker used ${cpu.map((s) => s.toFixed(1)).join(' and ')} s of CPU to get ready (${Math.round(readyMs)} ms after the launch)`);

  const session = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, { cert: fx.probe.cert, key: fx.probe.key, ca: fx.probe.bundle, checkServerIdentity: () => undefined });
  t.teardown(() => session.close());
  const call = (body: unknown) =>
    new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/echo', 'content-type': 'application/json' });
      stream.on('response', (h) => stream.resume().on('end', () => resolve(Number(h[':status']))));
      stream.on('error', reject);
      stream.end(JSON.stringify(body));
    });
  // several calls, new streams on one connection: one worker; the probe's own checks reach both elsewhere
  t.equal(await call({ f0: 'a', f299: 'b' }), 200, 'a body the schema takes reaches the app');
  t.equal(await call({ f0: 'x'.repeat(41) }), 400, 'one it refuses is 400');
  t.equal(await call({ nope: 1 }), 400, 'additionalProperties: false holds');
});
