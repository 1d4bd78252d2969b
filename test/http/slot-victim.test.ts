// Which connection makes room at a server's connection cap (src/http/slot-victim.ts), on a real
// admin server in this process with raw sockets from several loopback addresses; each /metrics
// is held (its render waits for the test), so a scrape stays in flight as long as the test
// likes, as the server's own wait for the next shared render lets any client keep one going.
// - every slot busy from one address: a probe from another is taken, and that address's oldest
//   goes; a newcomer from an address holding as many is closed;
// - a probe that has not sent its head yet is not closed by bare connects from another address
//   (they replace their own), nor by the kubelet's second probe from its own address while a
//   busy address holds more than its share, nor by a busy address that gave it its slot and
//   connects again;
// - connections renewed every 300 ms from as many addresses as slots, each holding one, do not
//   hold the cap against a probe;
// - a connection lingering after an early answer (its client still sending the body) is not
//   closed for a newcomer, and a kept-alive one is idle from its last answer, not its accept;
// - at an address's per-address share, its own oldest idle connection makes room for its new
//   one, a busy one never: with each one busy, the new one is closed.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';
import { waitFor } from '../helpers/mesh.js';
import { heldConnectionsOn } from '../helpers/connections.js';

const BUSY_HEAD = 'GET /ready HTTP/1.1\r\nHost: localhost\r\n\r\nGET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** An admin server capped at `maxConnections` whose /metrics answers wait for the test's end. */
async function heldAdmin(t: Tap.Test, maxConnections: number, maxConnectionsPerPeer?: number) {
  let release = () => {};
  const rendersHeld = new Promise<void>((resolve) => (release = resolve));
  const state: AdminState = { ready: () => true, draining: () => false, identity: () => ({}), config: () => ({}), metrics: async () => (await rendersHeld, { contentType: 'text/plain; version=0.0.4', body: '# ok\n' }) };
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { maxConnections, ...(maxConnectionsPerPeer ? { maxConnectionsPerPeer } : {}) });
  const open: net.Socket[] = [];
  t.teardown(async () => {
    release();
    open.forEach((s) => s.destroy());
    await admin.close();
  });
  const connectFrom = async (localAddress: string): Promise<net.Socket> => {
    const socket = net.connect({ port: admin.port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    open.push(socket);
    await once(socket, 'connect');
    return socket;
  };
  /** `count` connections from `address`, each with a scrape in flight (a /ready answered first: the server has read its heads). */
  const busyFrom = async (address: string, count: number): Promise<net.Socket[]> => {
    const sockets = await Promise.all(Array.from({ length: count }, () => connectFrom(address)));
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            socket.once('data', () => resolve());
            socket.once('close', () => resolve());
            socket.write(BUSY_HEAD);
          }),
      ),
    );
    return sockets;
  };
  /** GET /healthz on `socket` (whose head has not been sent): its status line, or 'closed'. */
  const ask = (socket: net.Socket) =>
    new Promise<string>((resolve) => {
      if (socket.destroyed) return resolve('closed');
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text.slice(0, 12));
      });
      socket.once('close', () => resolve(text.slice(0, 12) || 'closed'));
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
  return { port: admin.port, connectFrom, busyFrom, ask };
}

t.test('every slot busy from one address: a probe from another is taken; a newcomer from one holding as many is closed', async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 2);
  const busy = await busyFrom('127.0.0.2', 2);
  const probe = await connectFrom('127.0.0.1');
  t.equal(await ask(probe), 'HTTP/1.1 200', 'the probe from another address is answered');
  await waitFor(async () => busy[0]!.destroyed, 3_000, "127.0.0.2's oldest closed");
  t.notOk(busy[1]!.destroyed, 'its other one stays');
  // both addresses hold one now, both busy (the probe's next request held too)
  probe.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const third = await connectFrom('127.0.0.2');
  await waitFor(async () => third.destroyed, 3_000, 'a newcomer from an address holding as many closed');
  t.notOk(busy[1]!.destroyed || probe.destroyed, 'the busy ones are kept');
});

t.test('bare connects from another address do not close a probe that has not sent its head yet', async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 3);
  const busy = await busyFrom('127.0.0.2', 2);
  const probe = await connectFrom('127.0.0.1');
  const bare = [await connectFrom('127.0.0.3'), await connectFrom('127.0.0.3'), await connectFrom('127.0.0.3')];
  // the first took a busy slot of 127.0.0.2 (it held more than its share); each later one replaced its own
  await waitFor(async () => bare[0]!.destroyed && bare[1]!.destroyed, 3_000, "127.0.0.3's earlier connections closed for its later ones");
  t.ok(busy[0]!.destroyed, "127.0.0.2's oldest made room for the first");
  t.notOk(probe.destroyed, 'the probe is still open');
  t.equal(await ask(probe), 'HTTP/1.1 200', 'and answered');
});

t.test("the kubelet's two probes from one address while another holds more than its share, busy: both answered", async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 4);
  await busyFrom('127.0.0.2', 3);
  const probes = [await connectFrom('127.0.0.1'), await connectFrom('127.0.0.1')];
  t.same(await Promise.all(probes.map(ask)), ['HTTP/1.1 200', 'HTTP/1.1 200'], 'both answered');
});

t.test('two probes not yet sent and a bare connect from a third address: both probes answered', async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 5);
  await busyFrom('127.0.0.2', 3);
  const probes = [await connectFrom('127.0.0.1'), await connectFrom('127.0.0.1')];
  await connectFrom('127.0.0.3');
  t.same(await Promise.all(probes.map(ask)), ['HTTP/1.1 200', 'HTTP/1.1 200'], 'both answered');
});

t.test('a busy address that gave a slot up to a probe and connects again does not take it back', async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 4);
  await busyFrom('127.0.0.2', 2);
  await busyFrom('127.0.0.3', 2);
  const probe = await connectFrom('127.0.0.1');
  // 127.0.0.2 gave one up (it held more than one more than the probe's address) and comes back
  const again = await connectFrom('127.0.0.2');
  await waitFor(async () => again.destroyed || probe.destroyed, 3_000, 'one of them closed');
  t.ok(again.destroyed, 'the newcomer is closed');
  t.equal(await ask(probe), 'HTTP/1.1 200', 'the probe stays and is answered');
});

t.test('one connection per address, renewed every 300 ms from as many addresses as slots: probes are answered', { timeout: 30_000 }, async (t) => {
  const { port, connectFrom, ask } = await heldAdmin(t, 3);
  let stop = false;
  // bounded: at most 40 rounds each, stopped when the probes are done
  const renewing = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(async (address) => {
    for (let i = 0; i < 40 && !stop; i++) {
      await connectFrom(address).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  });
  // the cap filled by them first
  await waitFor(async () => (await heldConnectionsOn(process.pid, port)).length >= 3, 5_000, 'the three slots held');
  const results: string[] = [];
  for (let i = 0; i < 10; i++) results.push(await ask(await connectFrom('127.0.0.1')));
  stop = true;
  await Promise.all(renewing);
  t.same(results, Array(10).fill('HTTP/1.1 200'), 'all 10 probes answered');
});

/**
 * A client from 127.0.0.2 at a cap of 1 that sends `head`, then 4 MiB more, before it reads
 * (paused), so the server answers early and lingers reading the rest; once the answer is in,
 * a bare connect from 127.0.0.3, which must be closed (nothing may make room); then what the
 * client reads. Before, the lingering connection was closed for the newcomer: a reset, and the
 * answer in the client's receive buffer lost.
 */
async function lingeringAtTheCap(t: Tap.Test, head: string): Promise<string> {
  const { connectFrom } = await heldAdmin(t, 1);
  const client = await connectFrom('127.0.0.2');
  client.pause();
  const written = new Promise<void>((resolve) => client.write(head, () => resolve()));
  client.write(Buffer.alloc(4 * 1024 * 1024, 0x61));
  await written;
  // the answer has come (into the paused socket's buffer): the server lingers now
  await waitFor(async () => client.readableLength > 0, 3_000, 'the answer written');
  const newcomer = await connectFrom('127.0.0.3');
  await waitFor(async () => newcomer.destroyed, 3_000, 'the newcomer closed: nothing may make room');
  let text = '';
  client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const ended = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.resume();
  client.end();
  await ended;
  return text;
}

t.test('a connection lingering after an early answer is not closed for a newcomer: its client reads the answer', async (t) => {
  // a client that sends its whole body before it reads, and asks for the connection to close
  // (Python's urllib): a POST of 4 MiB the server answers (404) after its head
  const text = await lingeringAtTheCap(t, 'POST /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 4194304\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 404 /, 'the client read its answer');
});

t.test('a connection lingering after a parser refusal (431, no request ever seen) is not closed for a newcomer either', async (t) => {
  // a head over the admin port's 16 KiB, then more the client still sends before it reads
  const text = await lingeringAtTheCap(t, `GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n`);
  t.match(text, /^HTTP\/1\.1 431 /, 'the client read its answer');
});

t.test('idle counts from the last answer: a kept-alive connection between requests is not taken as idle for a second', async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 2);
  const kept = await connectFrom('127.0.0.2');
  const openedAt = performance.now();
  await waitFor(async () => performance.now() - openedAt >= 1_100, 3_000, 'the connection older than a second');
  t.equal(await ask(kept), 'HTTP/1.1 200', 'a request on it, answered just now');
  await busyFrom('127.0.0.3', 1);
  // both addresses hold one: no rule but "idle for a second" could close the kept-alive one
  const newcomer = await connectFrom('127.0.0.3');
  await waitFor(async () => newcomer.destroyed || kept.destroyed, 3_000, 'one of them closed');
  t.ok(newcomer.destroyed, 'the newcomer is closed');
  t.equal(await ask(kept), 'HTTP/1.1 200', "the kept-alive connection's next request is answered");
});

t.test("at an address's share, its own oldest connection with no request in flight makes room for its new one; a busy one never does", async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 16, 3);
  const oldIdle = await connectFrom('127.0.0.1');
  t.equal(await ask(oldIdle), 'HTTP/1.1 200', 'a kept-alive connection, idle since its answer');
  const [busy] = await busyFrom('127.0.0.1', 1);
  const youngIdle = await connectFrom('127.0.0.1');
  const newcomer = await connectFrom('127.0.0.1');
  await waitFor(async () => oldIdle.destroyed, 3_000, 'the oldest idle one closed for the newcomer');
  t.notOk(busy!.destroyed || youngIdle.destroyed, 'the busy one and the younger idle one are kept');
  t.equal(await ask(newcomer), 'HTTP/1.1 200', 'the newcomer is answered');
});

t.test("at an address's share, every one busy: its new one is closed; another address's is answered", async (t) => {
  const { connectFrom, busyFrom, ask } = await heldAdmin(t, 16, 3);
  const busy = await busyFrom('127.0.0.1', 3);
  const newcomer = await connectFrom('127.0.0.1');
  await waitFor(async () => newcomer.destroyed, 3_000, 'the newcomer from the address at its share closed');
  t.notOk(busy.some((s) => s.destroyed), 'its busy ones are kept');
  t.equal(await ask(await connectFrom('127.0.0.2')), 'HTTP/1.1 200', 'a probe from another address is answered');
});

