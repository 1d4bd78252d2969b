// V8's compilers above the interpreter are held while `meshcar run` starts and back once it is
// ready (src/compiler-tiers.ts; issue 10: idle RSS). Asked from outside: each sidecar runs with a
// test-side preload (test/fixtures/compiler-tiers.cjs) that, on SIGUSR2, tells how much of the
// node binary is resident and whether TurboFan optimizes a function made hot then.
// - the default sidecar, after ready and a call across the pair: TurboFan optimizes and Sparkplug
//   compiles (the compilers came back), and fewer of the node binary's pages are resident than
//   in one whose node was started with `--turbofan` (a flag the user set is left alone, so that
//   sidecar's start ran with TurboFan: 40.3-40.5 MB of the binary resident against 36.6-36.7)
// - a sidecar with an OpenAPI spec lets the compilers go before compiling it (a large spec took
//   a third longer in the interpreter): its start ran with TurboFan, as the control's did
// - a flag in another of V8's spellings (`--no_turbofan`) is the user's too: kept after ready

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { httpGet, startSidecar, waitFor, type RunningSidecar } from './helpers/mesh.js';
import { meshFixture } from './helpers/mesh-fixture.js';

const PRELOAD = ['--allow-natives-syntax', '--require', new URL('./fixtures/compiler-tiers.cjs', import.meta.url).pathname];

const mesh = meshFixture(t);
let orders: RunningSidecar; // node started with --turbofan: the user's flag, kept
let frontend: RunningSidecar; // the default: compilers held while starting
let reports: RunningSidecar; // an OpenAPI spec to compile: compilers let go before it
let billing: RunningSidecar; // node started with --no_turbofan: the user's, kept

/** A spec of `paths` POST operations, each with its own 20-property body schema. */
function largeSpec(paths: number): string {
  const doc: { openapi: string; info: object; paths: Record<string, unknown> } = { openapi: '3.0.3', info: { title: 'large', version: '1' }, paths: {} };
  for (let i = 0; i < paths; i++) {
    const properties = Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`f${j}`, j % 2 === 0 ? { type: 'string', maxLength: 64, pattern: '^[a-z0-9-]+$' } : { type: 'integer', minimum: 0 }]));
    doc.paths[`/r${i}`] = { post: { requestBody: { content: { 'application/json': { schema: { type: 'object', properties, additionalProperties: false } } } }, responses: { '200': { description: 'ok' } } } };
  }
  return JSON.stringify(doc);
}

t.before(async () => {
  const [ordersFiles, frontendFiles, reportsFiles, billingFiles] = await Promise.all(['orders', 'frontend', 'reports', 'billing'].map((name) => mesh.ca.issue(name)));
  const files = (dir: string) => ({ cert: `${dir}/svid.crt`, key: `${dir}/svid.key`, bundle: `${dir}/bundle.pem` });
  const spec = join(reportsFiles!.dir, 'large.json'); // beside its certificates (a t.testdir() here would empty the mesh's folder)
  await writeFile(spec, largeSpec(150));
  reports = await startSidecar(mesh.ca, { service: 'reports', files: files(reportsFiles!.dir), nodeArgs: PRELOAD, inbound: { app: `http://127.0.0.1:${mesh.app.port}`, openapi: `{spec: ${spec}, mode: shadow}` } });
  billing = await startSidecar(mesh.ca, { service: 'billing', files: files(billingFiles!.dir), nodeArgs: ['--no_turbofan', ...PRELOAD], inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  orders = await startSidecar(mesh.ca, {
    service: 'orders',
    files: files(ordersFiles!.dir),
    nodeArgs: ['--turbofan', ...PRELOAD],
    inbound: { app: `http://127.0.0.1:${mesh.app.port}`, authorize: '  authorize:\n    - from: [spiffe://mesh.local/svc/frontend]' },
  });
  frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    files: files(frontendFiles!.dir),
    nodeArgs: PRELOAD,
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }],
  });
});
t.teardown(() => Promise.all([frontend?.stop('SIGKILL'), orders?.stop(), reports?.stop(), billing?.stop()]));

/** What the preload tells on SIGUSR2. */
async function tiers(sidecar: RunningSidecar): Promise<{ optimized: boolean; baseline: boolean; residentKb: number }> {
  const stderr = sidecar.process!.stderr;
  const seen = stderr.length;
  sidecar.process!.child.kill('SIGUSR2');
  await waitFor(async () => stderr.slice(seen).some((l) => l.startsWith('compiler-tiers ')), 10_000, 'the compiler-tiers line', sidecar.process);
  const line = stderr.slice(seen).find((l) => l.startsWith('compiler-tiers ')) as string;
  return JSON.parse(line.slice('compiler-tiers '.length)) as { optimized: boolean; baseline: boolean; residentKb: number };
}

t.test('held while starting, back once ready', async (t) => {
  t.equal((await httpGet(frontend.outboundPort, '/headers', { host: 'orders' })).status, 200, 'a call crossed the pair');
  const held = await tiers(frontend);
  const control = await tiers(orders);
  t.ok(held.optimized, 'after ready, TurboFan optimizes a hot function in the default sidecar');
  t.ok(held.baseline, 'and Sparkplug compiles a warm one');
  t.ok(control.optimized, 'and in the one whose node was started with --turbofan');
  t.ok(held.residentKb < control.residentKb - 2048, `the start left at least 2 MB of the node binary out of memory: ${held.residentKb} KB resident against ${control.residentKb} KB with TurboFan through the start`);
});

t.test('a spec to compile lets the compilers go first; a flag the user gave in another spelling is kept', async (t) => {
  const control = await tiers(orders);
  const withSpec = await tiers(reports);
  t.ok(withSpec.residentKb > control.residentKb - 1024, `the spec's sidecar started with TurboFan as the control did: ${withSpec.residentKb} KB of the node binary resident against ${control.residentKb} KB`);
  const kept = await tiers(billing);
  t.notOk(kept.optimized, '--no_turbofan: still no TurboFan after ready');
});

