// A peer on another host gets only /healthz, /ready and /metrics from the admin port; the
// config, the identity, the views and POST /reload answer loopback peers alone. For real: the
// admin server (dist) runs in one network namespace listening on every address, and curl asks
// from a second namespace over a bridge (198.51.100.0/24, inside the namespaces only), from
// the first namespace's own non-loopback address, and from its loopback. Skips, saying why,
// unless root with `ip netns` (CI runs as root).

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isLoopbackAddress } from '../../src/admin/remote-access.js';
import { netnsUnavailable, SUBNET_PREFIX as NET, TestNetwork } from '../helpers/netns.js';

const SERVER = new URL('../../dist/admin/server.js', import.meta.url).href;
const PINO = pathToFileURL(createRequire(import.meta.url).resolve('pino')).href;
const A = `${NET}1`;

t.test('isLoopbackAddress', async (t) => {
  for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) t.ok(isLoopbackAddress(a), a);
  for (const a of [undefined, '10.0.0.1', '198.51.100.1', '::ffff:10.0.0.1', 'fe80::1', '::', '0.0.0.0']) t.notOk(isLoopbackAddress(a), String(a));
});

const skip = await netnsUnavailable();

t.test('a peer on another host', { skip: skip ?? false }, async (t) => {
  const net = new TestNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-admin-remote-'));
  const onExit = () => net.cleanupSync();
  process.once('exit', onExit);
  t.teardown(async () => {
    await net.cleanup();
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  });
  await net.create();
  await net.addHost('a', A);
  await net.addHost('b', `${NET}2`);

  // the admin server on every address of host a, its state plain data
  const script = join(dir, 'admin.mjs');
  writeFileSync(
    script,
    `import pinoModule from ${JSON.stringify(PINO)};
import { startAdminServer } from ${JSON.stringify(SERVER)};
const state = { ready: () => true, draining: () => false, identity: () => ({ spiffeId: 'spiffe://mesh.test/svc/orders' }), config: () => ({ service: 'orders' }),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'up 1\\n' }), reload: async () => ({ applied: [] }), views: { '/endpoints': () => ({ upstreams: [] }), '/upstreams': () => ({ upstreams: [] }) } };
const admin = await startAdminServer({ host: '0.0.0.0', port: 0 }, state, pinoModule({ level: 'warn' }, pinoModule.destination(2)));
console.log('listening ' + admin.port);
`,
  );
  const child = net.spawn('a', process.execPath, [script]);
  let out = '';
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  for (let i = 0; i < 500 && !/listening \d+/.test(out); i++) await new Promise((r) => setTimeout(r, 10));
  const port = /listening (\d+)/.exec(out)?.[1];
  t.ok(port, `the admin server listens in host a (${out.trim()} ${log.trim()})`);

  /** curl from `host` to `address`: status and body. */
  const ask = async (host: string, address: string, path: string, method = 'GET', header?: string) => {
    const text = await net.exec(host, 'curl', ['-s', '-m', '5', '-X', method, ...(header ? ['-H', header] : []), '-w', '\n%{http_code}', `http://${address}:${port}${path}`]);
    const lines = text.split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  };

  for (const path of ['/healthz', '/ready', '/metrics']) t.equal((await ask('b', A, path)).status, 200, `from another host: GET ${path} 200`);
  for (const [method, path] of [['GET', '/config'], ['GET', '/identity'], ['GET', '/endpoints'], ['GET', '/upstreams'], ['POST', '/reload']] as const) {
    const refused = await ask('b', A, path, method);
    t.equal(refused.status, 403, `from another host: ${method} ${path} 403`);
    t.match(JSON.parse(refused.body), { error: 'forbidden', message: new RegExp(`^${path} answers only on this host`) }, 'a JSON error saying why');
  }
  t.equal((await ask('a', A, '/config')).status, 403, "from the host's own non-loopback address: 403 too");
  t.same(JSON.parse((await ask('a', '127.0.0.1', '/config')).body), { service: 'orders' }, 'from loopback: /config answers');
  t.equal((await ask('a', '127.0.0.1', '/reload', 'POST')).status, 200, 'from loopback: POST /reload answers');

  // each refusing peer is a warn line on the sidecar's log (one per address per 10 s, which
  // counts the rest): the operator sees a pod reaching for /config without turning debug on
  const refusals = (): Array<{ level: number; remote: string; method: string; url: string; msg: string }> =>
    log.split('\n').filter((l) => l.includes('admin request refused')).map((l) => JSON.parse(l));
  for (let i = 0; i < 200 && refusals().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  const lines = refusals();
  t.equal(lines.length, 2, `one line per refusing address (${log.trim()})`);
  t.match(lines[0], { level: 40, remote: `${NET}2`, method: 'GET', url: '/config', msg: /^admin request refused: \/config answers only on this host/ }, 'the other host: its address, the request and why');
  t.match(lines[1], { level: 40, remote: A, url: '/config' }, "the host's own non-loopback address: a line of its own");
  await ask('b', A, '/identity');
  // then a refusal of another kind from a third address (loopback, a web page's request): the
  // log is one ordered stream, so once its line is in, a line for the one before would be too
  t.equal((await ask('a', '127.0.0.1', '/config', 'GET', 'Sec-Fetch-Site: cross-site')).status, 403, "from loopback, a web page's request: 403");
  for (let i = 0; i < 200 && refusals().length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(
    refusals().map((l) => l.remote),
    [`${NET}2`, A, '127.0.0.1'],
    'a further refusal within 10 s from the same address wrote no line (it is counted into the next); the loopback one did',
  );
});
