// What one client can cost the admin port, which may be open to every host (Prometheus in
// Kubernetes): a connection that pipelines many GET /metrics and never reads the answers is
// closed once more than ADMIN_MAX_PIPELINED are in flight, so the server neither renders nor
// holds a page per request (this process's RSS stays bounded), and other scrapes are answered
// meanwhile; at maxConnections the oldest idle connection is closed for a new one (one that
// arrives while all have a request in flight, from the address holding the most, is closed:
// which connection makes room otherwise is test/http/slot-victim.test.ts); and one peer address
// holding keep-alive connections cannot take every slot from the others (a liveness probe), nor
// its share from its own new connections (every local process shares 127.0.0.1).
// Raw sockets against a real admin server in this process; every wait is bounded.

// test-run: own process (it measures this process's RSS)
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';
import { ADMIN_MAX_PIPELINED } from '../../src/admin/pipeline-bound.js';
import { ADMIN_MAX_CONNECTIONS } from '../../src/admin/server.js';
import { ADMIN_MAX_CONNECTIONS_PER_PEER } from '../../src/admin/peer-connections.js';
import { heldConnectionsOn, serverLetGoWithin } from '../helpers/connections.js';

/** Scheduling on a loaded 2-core machine, on top of each bound. */
const SLACK_MS = 3_000;
const PAGE_BYTES = 1024 * 1024;
const PIPELINED = 200;
const MB = 1024 * 1024;

let renders = 0;
const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  // a fresh 1 MiB page per render, ready a moment later, as a large registry's would be
  metrics: async () => {
    renders += 1;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { contentType: 'text/plain; version=0.0.4', body: `# render ${String(renders).padEnd(PAGE_BYTES, '.')}\n` };
  },
};

/** GET /healthz on a new connection. */
function probe(port: number): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      })
      .on('error', reject);
  });
}

function scrape(port: number): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      })
      .on('error', reject);
  });
}

t.test(`${PIPELINED} GET /metrics pipelined and never read: the connection is closed, memory stays bounded, other scrapes are answered`, async (t) => {
  // the idle sweep is far off: only the pipelining bound can close the connection in time
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { idleTimeoutMs: 60_000 });
  t.teardown(() => admin.close());
  t.equal((await scrape(admin.port)).status, 200, 'a scrape before');
  let peak = process.memoryUsage().rss;
  const before = peak;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  t.teardown(() => clearInterval(sampler));

  const client = net.connect(admin.port, '127.0.0.1');
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  client.pause(); // never reads
  const since = Date.now();
  client.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(PIPELINED));
  const meanwhile = await scrape(admin.port);
  t.equal(meanwhile.status, 200, 'a scrape on another connection meanwhile is answered');
  t.ok(meanwhile.bytes > PAGE_BYTES, 'in full');

  const letGo = await serverLetGoWithin(admin.port, client.localPort as number, since, SLACK_MS);
  t.type(letGo, 'number', `the pipelining connection is closed (${String(letGo)})`);
  t.ok(renders <= 2 + ADMIN_MAX_PIPELINED + 1, `a few pages rendered, not one per request (${renders})`);
  t.equal((await scrape(admin.port)).status, 200, 'a scrape after');
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  t.ok(peak - before < 60 * MB, `RSS grew ${Math.round((peak - before) / MB)} MB (bound 60 MB; a page per request is ${Math.round((PIPELINED * PAGE_BYTES) / MB)} MB)`);
});

t.test('at maxConnections the oldest idle connection makes room for a new one; with every one busy, the new one is closed', async (t) => {
  // a render that waits for the test: a scrape's answer is in flight for as long as it likes
  let release = () => {};
  const rendersHeld = new Promise<void>((resolve) => (release = resolve));
  const slowState: AdminState = { ...state, metrics: async () => (await rendersHeld, { contentType: 'text/plain; version=0.0.4', body: '# ok\n' }) };
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, slowState, pino({ level: 'silent' }), { maxConnections: 2 });
  t.teardown(() => {
    release();
    return admin.close();
  });
  const open: net.Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));
  const connect = async (): Promise<net.Socket> => {
    const socket = net.connect(admin.port, '127.0.0.1');
    socket.on('error', () => undefined);
    open.push(socket);
    await once(socket, 'connect');
    return socket;
  };
  const closedWithin = (socket: net.Socket, ms: number) =>
    socket.destroyed ? Promise.resolve(true) : Promise.race([once(socket, 'close').then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
  const held = async () => (await heldConnectionsOn(process.pid, admin.port)).length;

  // two connections that send nothing (as from pods holding the slots), then a probe
  const [first, second] = [await connect(), await connect()];
  for (let i = 0; i < 100 && (await held()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal((await probe(admin.port)).status, 200, 'a probe at the cap is served');
  t.ok(await closedWithin(first!, SLACK_MS), 'the oldest idle connection was closed for it');
  t.notOk(await closedWithin(second!, 100), 'the younger one stays');

  // both slots busy: a scrape each, its render held, so the answers stay in flight
  second!.destroy();
  for (let i = 0; i < 100 && (await held()) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const busy = [await connect(), await connect()];
  for (const socket of busy) socket.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
  for (let i = 0; i < 100 && (await held()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 100)); // the heads read: the requests are in flight
  const third = await connect();
  t.ok(await closedWithin(third, SLACK_MS), 'a third connection is closed by the server');
  t.notOk(busy.some((s) => s.destroyed), 'the busy ones are kept');
});

t.test(`one peer with ${ADMIN_MAX_CONNECTIONS} keep-alive connections asking /healthz holds at most ${ADMIN_MAX_CONNECTIONS_PER_PEER}; a new connection of its own and another peer's probe are answered`, async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  // the flooding peer is 127.0.0.2, the other probe comes from 127.0.0.1: two addresses, one host
  const flood: net.Socket[] = [];
  t.teardown(() => flood.forEach((s) => s.destroy()));
  const settled = new Set<net.Socket>();
  const ask = (s: net.Socket) => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  for (let i = 0; i < ADMIN_MAX_CONNECTIONS; i++) {
    const s = net.connect({ port: admin.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    s.on('error', () => undefined);
    s.once('data', () => settled.add(s));
    s.once('close', () => settled.add(s));
    s.once('connect', () => ask(s));
    flood.push(s);
  }
  // as the attack does: each connection asks again every second, so none is idle for long
  const again = setInterval(() => flood.forEach((s) => !s.destroyed && ask(s)), 1_000);
  t.teardown(() => clearInterval(again));
  for (let i = 0; i < 250 && settled.size < ADMIN_MAX_CONNECTIONS; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const open = flood.filter((s) => !s.destroyed).length;
  t.ok(open >= 1 && open <= ADMIN_MAX_CONNECTIONS_PER_PEER, `the flooding peer holds ${open} connections, at most ${ADMIN_MAX_CONNECTIONS_PER_PEER}`);
  const within = <T>(answer: Promise<T>) => Promise.race([answer, new Promise<number>((resolve) => setTimeout(() => resolve(0), SLACK_MS))]);
  t.equal(await within(scrapeHealthz(admin.port)), 200, "another peer's probe on a new connection is answered");
  // every local process shares one address: one holding the share must not shut the others out
  t.equal(await within(scrapeHealthz(admin.port, '127.0.0.2')), 200, "a new connection from the flooding peer's own address is answered, its oldest idle one closed for it");
  t.ok(flood.filter((s) => !s.destroyed).length <= ADMIN_MAX_CONNECTIONS_PER_PEER, 'and the flooding peer still holds no more than its share');
});

function scrapeHealthz(port: number, localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', agent: false, ...(localAddress ? { localAddress } : {}) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', () => resolve(-1));
  });
}
