// An upstream's `connectTimeout` (Envoy's connect_timeout): the bound of each dial (TCP, TLS,
// the peer's first SETTINGS) is its own, not the request's `timeout`. Toward an endpoint that
// accepts TCP and never answers TLS (a hung process, a half-dead host) a request that met it
// went on to the healthy endpoint only when min(timeout, 10 s) had passed: with `timeout: 3s`
// it had no time left and got 504 beside a healthy endpoint. Real sidecars and our CA, both
// codecs; a bad value is refused by `check` and by a reload (the old config kept), a reload
// that lowers it reaches the next dial while the open sessions stay, and a dial that runs out
// says whether the TCP connection or the TLS handshake stalled.

import t from 'tap';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { httpPost, startSidecar, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { runCli } from '../helpers/ca.js';
import { connectionsTo } from '../helpers/connections.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
const ORDERS_ID = 'spiffe://mesh.local/svc/orders';

/** Accepts TCP connections and never says a word: a TLS handshake toward it never finishes. */
interface BlackHole {
  readonly port: number;
  readonly accepted: () => number;
  close(): Promise<void>;
}

async function startBlackHole(): Promise<BlackHole> {
  const held = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    held.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => held.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of held) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One request through the sidecar's outbound, timed from its start to the end of its answer. */
async function timed(port: number, host: string): Promise<{ status: number; ms: number; body: string }> {
  const start = performance.now();
  const res = await request(port, { path: '/headers', headers: { host } });
  return { status: res.status, ms: performance.now() - start, body: res.body.toString() };
}

let orders: RunningSidecar;
let hole: BlackHole;
t.before(async () => {
  orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  hole = await startBlackHole();
});
t.teardown(async () => {
  await orders?.stop();
  await hole?.close();
});

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a request that meets the black hole is answered by the healthy endpoint within the connect timeout`, async (t) => {
    const frontend = await startSidecar(mesh.ca, {
      service: 'frontend',
      codec,
      upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${hole.port}`, `127.0.0.1:${orders.inboundPort}`], identity: ORDERS_ID, timeout: '3s', connectTimeout: '300ms' }],
    });
    t.teardown(() => frontend.stop('SIGKILL'));
    const before = hole.accepted();
    const seen: Array<{ status: number; ms: number }> = [];
    // until a request has met the hole (the balancer picks it sooner or later: both start unknown)
    for (let i = 0; i < 20 && (hole.accepted() === before || seen.length < 3); i++) {
      const { status, ms } = await timed(frontend.outboundPort, 'orders');
      seen.push({ status, ms: Math.round(ms) });
    }
    const said = JSON.stringify(seen);
    t.ok(hole.accepted() > before, `a request met the black hole: ${said}`);
    t.ok(
      seen.every((r) => r.status === 200),
      `every request answered 200 by the healthy endpoint (504 at the 3 s timeout before): ${said}`,
    );
    // 300 ms of dial, then the healthy endpoint; slack for a loaded machine, well under the 3 s timeout
    const slowest = Math.max(...seen.map((r) => r.ms));
    t.ok(slowest < 2500, `the slowest request took ${slowest} ms: ${said}`);
  });
}

/** The frontend's config file with `from` replaced by `to` (throws when `from` is not in it). */
async function edit(sidecar: RunningSidecar, from: string | RegExp, to: string): Promise<void> {
  const before = await readFile(sidecar.configFile, 'utf8');
  const after = before.replace(from, to);
  if (after === before) throw new Error(`config edit did not apply: ${String(from)}`);
  await writeFile(sidecar.configFile, after);
}

t.test('a reload that lowers connectTimeout reaches the next dial and leaves the open sessions; a bad value keeps the old one', async (t) => {
  const frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    upstreams: [
      { name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: ORDERS_ID, timeout: '3s' },
      // only the black hole: a request to it ends when its dial gives up
      { name: 'hole', endpoints: [`127.0.0.1:${hole.port}`], identity: ORDERS_ID, timeout: '10s', connectTimeout: '8s' },
    ],
  });
  t.teardown(() => frontend.stop('SIGKILL'));
  t.equal((await timed(frontend.outboundPort, 'orders')).status, 200, 'a session to orders is open');
  const [session] = await connectionsTo(frontend.process.child.pid as number, orders.inboundPort);
  t.ok(session, 'the frontend holds a connection to orders');
  const config = () => frontend.admin('/config').then((r) => JSON.parse(r.body) as { outbound: { upstreams: Record<string, { connectTimeout: string }> } });
  t.same(Object.fromEntries(Object.entries((await config()).outbound.upstreams).map(([name, u]) => [name, u.connectTimeout])), { orders: '5s', hole: '8s' }, '/config shows each connect timeout (5s when not written)');

  // a bad value: 400 naming the key and the file, nothing applied
  for (const bad of ['0s', '2m', 'soon']) {
    await edit(frontend, /connectTimeout: \S+/, `connectTimeout: ${bad}`);
    const refused = await httpPost(frontend.adminPort, '/reload');
    t.equal(refused.status, 400, `connectTimeout: ${bad} is refused: ${refused.body}`);
    t.match(refused.body, /outbound\.upstreams\.hole\.connectTimeout/, 'the refusal names the key');
    t.match(refused.body, frontend.configFile, 'and the file');
  }
  t.equal((await config()).outbound.upstreams.hole?.connectTimeout, '8s', 'the running config kept 8s');

  await edit(frontend, /connectTimeout: \S+/, 'connectTimeout: 300ms');
  const applied = await httpPost(frontend.adminPort, '/reload');
  t.equal(applied.status, 200, applied.body);
  t.equal((await config()).outbound.upstreams.hole?.connectTimeout, '300ms', '/config shows the new value');
  const res = await timed(frontend.outboundPort, 'hole');
  t.equal(res.status, 503, `the dial to the black hole gave up: ${res.body}`);
  t.match(res.body, /upstream_unavailable/);
  // its dial and its retries', 300 ms each (about 1 s in all); under the old value the first alone
  // takes 8 s: the bound leaves a busy host room
  t.ok(res.ms < 5000, `answered after ${Math.round(res.ms)} ms`);
  t.same(await connectionsTo(frontend.process.child.pid as number, orders.inboundPort), [session], 'the session to orders is the one open before the reloads');
  t.equal((await timed(frontend.outboundPort, 'orders')).status, 200, 'and still carries requests');
});

// a host that drops SYNs (down, a firewall): a listener whose accept queue is full and that
// never accepts (python: Node accepts every connection itself), so further SYNs go unanswered
const SYN_HOLE = [
  'import socket, time',
  "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
  'port = s.getsockname()[1]; fill = []',
  'for i in range(3):',
  '    c = socket.socket(); c.setblocking(False); fill.append(c)',
  "    try: c.connect(('127.0.0.1', port))",
  '    except BlockingIOError: pass',
  'print(port, flush=True); time.sleep(60)',
].join('\n');

t.test('the 503 tells an endpoint that takes no TCP connection from one that never finishes TLS', async (t) => {
  const python = spawn('python3', ['-c', SYN_HOLE], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void python.kill());
  const [line] = (await once(python.stdout, 'data')) as [Buffer];
  const synHole = Number(line.toString().trim());
  const frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    upstreams: [
      { name: 'down', endpoints: [`127.0.0.1:${synHole}`], identity: ORDERS_ID, timeout: '3s', connectTimeout: '300ms' },
      { name: 'hung', endpoints: [`127.0.0.1:${hole.port}`], identity: ORDERS_ID, timeout: '3s', connectTimeout: '300ms' },
    ],
  });
  t.teardown(() => frontend.stop('SIGKILL'));
  const down = await timed(frontend.outboundPort, 'down');
  t.equal(down.status, 503, down.body);
  t.match(down.body, `no TCP connection to 127.0.0.1:${synHole} within 300 ms (the connect timeout)`);
  const hung = await timed(frontend.outboundPort, 'hung');
  t.equal(hung.status, 503, hung.body);
  t.match(hung.body, `127.0.0.1:${hole.port} took the TCP connection but did not finish the TLS handshake within 300 ms (the connect timeout)`);
  // the stalled handshake is a TLS failure, as a caller's is on the inbound; no TCP connection is none
  const { failures } = JSON.parse((await frontend.admin('/debug/tls')).body) as { failures: Array<{ direction: string; peer: string; reason: string; message: string }> };
  const stalled = failures.filter((f) => f.peer === `127.0.0.1:${hole.port}`);
  t.ok(stalled.length > 0 && stalled.every((f) => f.direction === 'outbound' && f.reason === 'handshake_timeout'), `/debug/tls: ${JSON.stringify(failures)}`);
  t.match(stalled[0]?.message, /the server took the TCP connection and never finished the TLS handshake within the connect timeout/);
  t.equal(failures.filter((f) => f.peer === `127.0.0.1:${synHole}`).length, 0, 'no entry for the endpoint that took no TCP connection');
  const metrics = (await frontend.admin('/metrics')).body;
  t.match(metrics, /^meshcar_tls_handshake_failures_total\{direction="outbound",reason="handshake_timeout"\} [1-9]/m, 'counted');
});

t.test('meshcar check refuses a bad connectTimeout with one line naming the key and the file', async (t) => {
  const dir = t.testdir();
  for (const [value, why] of [
    ['0s', /longer than zero/],
    ['5ms', /too short: the least allowed is 10ms/],
    ['2m', /too long: the most allowed is 1m/],
    ['300', /give a unit/],
    ['fast', /not a duration/],
  ] as const) {
    const file = join(dir, `bad-${value}.yaml`);
    await writeFile(
      file,
      [
        'service: frontend',
        'trustDomain: mesh.local',
        `identity: {ca: {url: "${mesh.ca.url}", bundle: ${mesh.ca.bundlePath}, token: ${await mesh.ca.tokenFile('frontend')}}, dir: ${join(dir, 'id')}}`,
        'outbound:',
        '  listen: 127.0.0.1:0',
        '  upstreams:',
        `    orders: {endpoints: [127.0.0.1:1], identity: ${ORDERS_ID}, connectTimeout: ${value}}`,
        '',
      ].join('\n'),
    );
    const checked = await runCli(['check', '--config', file]);
    t.equal(checked.code, 1, `connectTimeout: ${value} is refused`);
    const lines = (checked.stdout + checked.stderr).split('\n').filter((l) => l.includes('connectTimeout'));
    t.equal(lines.length, 1, `one line: ${checked.stdout}${checked.stderr}`);
    t.match(lines[0], file, 'it names the file');
    t.match(lines[0], /outbound\.upstreams\.orders\.connectTimeout/, 'and the key');
    t.match(lines[0], why);
  }
});
