// V8's compilers above the interpreter are held while `meshcar run` starts and back once it is
// ready (src/compiler-tiers.ts; issue 10: idle RSS). Asked from outside: each sidecar runs with a
// test-side preload (test/fixtures/compiler-tiers.cjs) that, on SIGUSR2, tells how much of the
// node binary is resident and whether TurboFan optimizes a function made hot then.
// - the default sidecar, after ready and a call across the pair: TurboFan optimizes (the
//   compilers came back), and fewer of the node binary's pages are resident than in one whose
//   node was started with `--turbofan` (a flag the user set is left alone, so that sidecar's start
//   ran with TurboFan: 40.3-40.5 MB of the binary resident against 36.6-36.7, measured)

import t from 'tap';
import { httpGet, startSidecar, waitFor, type RunningSidecar } from './helpers/mesh.js';
import { meshFixture } from './helpers/mesh-fixture.js';

const PRELOAD = ['--allow-natives-syntax', '--require', new URL('./fixtures/compiler-tiers.cjs', import.meta.url).pathname];

const mesh = meshFixture(t);
let orders: RunningSidecar; // node started with --turbofan: the user's flag, kept
let frontend: RunningSidecar; // the default: compilers held while starting

t.before(async () => {
  const [ordersFiles, frontendFiles] = await Promise.all([mesh.ca.issue('orders'), mesh.ca.issue('frontend')]);
  const files = (dir: string) => ({ cert: `${dir}/svid.crt`, key: `${dir}/svid.key`, bundle: `${dir}/bundle.pem` });
  orders = await startSidecar(mesh.ca, {
    service: 'orders',
    files: files(ordersFiles.dir),
    nodeArgs: ['--turbofan', ...PRELOAD],
    inbound: { app: `http://127.0.0.1:${mesh.app.port}`, authorize: '  authorize:\n    - from: [spiffe://mesh.local/svc/frontend]' },
  });
  frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    files: files(frontendFiles.dir),
    nodeArgs: PRELOAD,
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }],
  });
});
t.teardown(() => Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]));

/** What the preload tells on SIGUSR2. */
async function tiers(sidecar: RunningSidecar): Promise<{ optimized: boolean; residentKb: number }> {
  const stderr = sidecar.process!.stderr;
  const seen = stderr.length;
  sidecar.process!.child.kill('SIGUSR2');
  await waitFor(async () => stderr.slice(seen).some((l) => l.startsWith('compiler-tiers ')), 10_000, 'the compiler-tiers line', sidecar.process);
  const line = stderr.slice(seen).find((l) => l.startsWith('compiler-tiers ')) as string;
  return JSON.parse(line.slice('compiler-tiers '.length)) as { optimized: boolean; residentKb: number };
}

t.test('held while starting, back once ready', async (t) => {
  t.equal((await httpGet(frontend.outboundPort, '/headers', { host: 'orders' })).status, 200, 'a call crossed the pair');
  const held = await tiers(frontend);
  const control = await tiers(orders);
  t.ok(held.optimized, 'after ready, TurboFan optimizes a hot function in the default sidecar');
  t.ok(control.optimized, 'and in the one whose node was started with --turbofan');
  t.ok(held.residentKb < control.residentKb - 2048, `the start left at least 2 MB of the node binary out of memory: ${held.residentKb} KB resident against ${control.residentKb} KB with TurboFan through the start`);
});
