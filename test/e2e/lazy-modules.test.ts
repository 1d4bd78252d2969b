// An idle sidecar holds only the code its configuration uses (issue 10: idle RSS). Asked from
// outside: each sidecar runs with a test-side preload (test/fixtures/loaded-modules.cjs) that
// lists its loaded CommonJS modules on SIGUSR2, after one call crossed the pair.
// - http2.codec meshcar: http2-wrapper (the node codec's outbound agent) is never loaded;
//   with codec node it is (which also shows the listing sees what is loaded).
// - identity.files: node-forge is never loaded; identity.ca makes its CSR without it too.
// - prom-client's default metrics pull @opentelemetry/api (exemplars); the process_* metrics
//   are meshcar's own, so it is not loaded, and the families are still there.
// - pino and yaml, which every sidecar loads at start, come from the bundle.

import t from 'tap';
import { httpGet, startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const PRELOAD = ['--require', new URL('../fixtures/loaded-modules.cjs', import.meta.url).pathname];

const mesh = meshFixture(t);
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  const files = await mesh.ca.issue('orders');
  orders = await startSidecar(mesh.ca, {
    service: 'orders',
    codec: 'meshcar',
    files: { cert: `${files.dir}/svid.crt`, key: `${files.dir}/svid.key`, bundle: `${files.dir}/bundle.pem` },
    nodeArgs: PRELOAD,
    inbound: { app: `http://127.0.0.1:${mesh.app.port}`, authorize: '  authorize:\n    - from: [spiffe://mesh.local/svc/frontend]' },
  });
  frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    codec: 'node',
    nodeArgs: PRELOAD,
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }],
  });
});
t.teardown(() => Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]));

/** The packages (node_modules/NAME) a sidecar has loaded, asked through the preload. */
async function loadedPackages(sidecar: RunningSidecar): Promise<Set<string>> {
  const stderr = sidecar.process.stderr;
  const seen = stderr.length;
  sidecar.process.child.kill('SIGUSR2');
  await waitFor(async () => stderr.slice(seen).some((l) => l.startsWith('loaded-modules ')), 5_000, 'the loaded-modules line', sidecar.process);
  const line = stderr.slice(seen).find((l) => l.startsWith('loaded-modules ')) as string;
  const files = JSON.parse(line.slice('loaded-modules '.length)) as string[];
  return new Set(files.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter((p): p is string => p !== undefined));
}

t.test('after a call, each sidecar holds only what its configuration uses', async (t) => {
  t.equal((await httpGet(frontend.outboundPort, '/headers', { host: 'orders' })).status, 200, 'a call crossed the pair (frontend: codec node, CA identity; orders: codec meshcar, identity files)');
  const [front, back] = await Promise.all([loadedPackages(frontend), loadedPackages(orders)]);
  t.ok(front.has('http2-wrapper'), 'codec node: http2-wrapper is loaded (the listing sees loaded packages)');
  t.ok(back.has('prom-client'), 'the listing holds what every sidecar reads from node_modules (prom-client, its parts loaded one by one)');
  // the packages every sidecar loads at start whole are in its bundle (package.json's bundle script), not read from node_modules
  for (const name of ['pino', 'yaml']) t.notOk(back.has(name) || front.has(name), `${name}: from the bundle, not node_modules`);
  t.notOk(back.has('http2-wrapper'), 'codec meshcar: http2-wrapper is not loaded');
  t.notOk(back.has('node-forge'), 'identity.files: node-forge is not loaded');
  t.notOk(front.has('node-forge'), 'identity.ca: the CSR was made without node-forge');
  for (const [name, loaded] of [['frontend', front], ['orders', back]] as const) t.notOk(loaded.has('@opentelemetry/api'), `${name}: @opentelemetry/api is not loaded`);
  const metrics = (await orders.admin('/metrics')).body;
  for (const family of ['process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) {
    t.match(metrics, new RegExp(`^# TYPE ${family} `, 'm'), `/metrics still has ${family}`);
  }
});
