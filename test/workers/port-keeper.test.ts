// `workers: 2`: while no worker runs, the primary holds the listen ports itself
// (src/workers/port-keeper.ts). node:cluster closes a shared listener with its last worker, so
// with every worker dead at once, or both waiting out the crash-loop delay (up to a minute),
// the port was free: another local process bound it within milliseconds (the workers review),
// took the app's calls, and every replacement then failed to bind, for good. Here a "thief"
// in the test process tries to bind the port every millisecond while both workers wait out the
// crash-loop delay. (The hand-over to a replacement, one socket closed and node:cluster's bound
// a turn later, leaves a gap of a scheduling slice that a process trying without pause can hit:
// port-keeper.ts says so; it is not tested here.)

import net from 'node:net';
import tap from 'tap';
import { startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';
import { MAX_RESTARTS } from '../../src/workers/restart-policy.js';
import { freePort } from '../helpers/process.js';

const t = tap;
const fx = workersFixture(t);

/** Tries to bind 127.0.0.1:`port` `attempts` times, a millisecond apart at least; what it bound, it lets go at once. */
function thief(port: number, attempts: number): { stop(): Promise<number> } {
  let stolen = 0;
  let running = true;
  let made = 0;
  const attempt = (): Promise<void> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve());
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        stolen++;
        server.close(() => resolve());
      });
    });
  const loop = (async () => {
    while (running && made++ < attempts) {
      await attempt();
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return stolen;
    },
  };
}

/** Whether a TCP connection to the port is accepted (then closed by the holder) rather than refused. */
function accepted(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startTwo(t: typeof tap): Promise<RunningSidecar> {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, 'the port serves');
  return sidecar;
}

t.test('both workers waiting out the crash-loop delay: the primary holds the port, refusing nothing for good', { timeout: 90_000 }, async (t) => {
  const sidecar = await startTwo(t);
  for (let i = 1; i <= MAX_RESTARTS; i++) {
    const [one] = (await workersOf(sidecar)).workers;
    process.kill(one?.pid as number, 'SIGKILL');
    await waitFor(async () => {
      const view = await workersOf(sidecar);
      return view.workers.length === 2 && view.workers.every((w) => w.listening && w.pid !== one?.pid);
    }, 15_000, `replacement ${i} listening`, sidecar.process);
  }
  const both = (await workersOf(sidecar)).workers;
  for (const worker of both) process.kill(worker.pid, 'SIGKILL');
  await waitFor(async () => (await workersOf(sidecar)).workers.length === 0, 10_000, 'no worker left, both replacements waiting', sidecar.process);
  // 500 tries, a millisecond apart at least: a second or more of the minute's wait
  t.equal(await thief(sidecar.inboundPort, 500).stop(), 0, 'the thief never bound the port');
  t.ok(await accepted(sidecar.inboundPort), 'a caller is accepted and closed by the primary, not refused');
  t.ok(sidecar.process?.lines.some((l) => String(l.msg).startsWith('no worker listens: the primary holds the listen ports')), 'the log says the primary holds them');
});

/** Whether 127.0.0.1:`port` can be bound now (bound and let go at once). */
function bindable(port: number): Promise<boolean> {
  return thief(port, 1).stop().then((stolen) => stolen === 1);
}

// a worker asks node:cluster for its outbound port first and for its inbound one once that
// listens, 26-65 ms later: the keeper let go of both at the first ask, and the inbound port was
// free that long at each hand-over (the keeper's review: a tight-loop thief took it 3 of 3
// times). The keeper alone, on real sockets, with a worker's process as node:cluster's
// internal messages reach the primary (the moments around a real hand-over are too short to
// aim at: the test above covers the real workers).
t.test("a worker's ask for one port lets go of that port only", async (t) => {
  const { PortKeeper } = await import('../../src/workers/port-keeper.js');
  const { EventEmitter } = await import('node:events');
  const { memoryLogger } = await import('../helpers/ca.js');
  // the keeper binds them itself: drawn below the ephemeral range, where no client socket of a
  // test beside this one takes them meanwhile
  const outbound = await freePort();
  let inbound = await freePort();
  while (inbound === outbound) inbound = await freePort();
  const keeper = new PortKeeper(memoryLogger([]), () => [{ host: '127.0.0.1', port: outbound }, { host: '127.0.0.1', port: inbound }]);
  t.teardown(() => keeper.stop());
  const worker = (id: number) => Object.assign(new EventEmitter(), { id, isDead: () => false, process: new EventEmitter() });
  const ask = (w: ReturnType<typeof worker>, port: number) => w.process.emit('internalMessage', { cmd: 'NODE_CLUSTER', act: 'queryServer', port, address: '127.0.0.1' });
  const old = worker(1);
  keeper.watch(old as never);
  ask(old, outbound);
  ask(old, inbound);
  keeper.gone(old as never);
  await new Promise((r) => setImmediate(r)); // the holder's bind comes a tick after its listen
  t.same([await bindable(outbound), await bindable(inbound)], [false, false], 'the last worker gone: both ports held');
  const next = worker(2);
  keeper.watch(next as never);
  ask(next, outbound);
  t.same([await bindable(outbound), await bindable(inbound)], [true, false], 'asked for the outbound port: that one let go, the inbound one still held');
  ask(next, inbound);
  t.equal(await bindable(inbound), true, 'asked for the inbound port: let go');
  keeper.gone(next as never);
  await new Promise((r) => setImmediate(r));
  t.same([await bindable(outbound), await bindable(inbound)], [false, false], 'gone again: both held again');
});
