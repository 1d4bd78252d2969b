// A connection node:cluster hands to a worker that never takes it (workers: 2), for real: a
// sidecar with two workers, real TLS connections from a caller of our CA. One worker is stopped
// (SIGSTOP: a worker wedged, or one killed just as a connection was handed to it): the primary
// hands it one connection and waits for it to answer that it took it, every later one goes to
// the other worker. Once the health checks have killed and replaced the stopped worker, that
// connection is closed (src/workers/untaken-connections.ts) and the primary's descriptor with
// it; it used to stay open for the primary's life with nobody reading it, so a caller without
// a timeout of its own hung for good.

import t from 'tap';
import tls from 'node:tls';
import { readdir } from 'node:fs/promises';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('a connection handed to a worker that never took it is closed when that worker is gone', { timeout: 40_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const descriptors = async () => (await readdir(`/proc/${sidecar.process.child.pid}/fd`)).length;
  const [one] = (await workersOf(sidecar)).workers;
  const before = await descriptors();
  process.kill(one?.pid as number, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(one?.pid as number, 'SIGKILL');
    } catch {
      // replaced already
    }
  });

  const sockets = Array.from({ length: 4 }, () => tls.connect({ host: '127.0.0.1', port: sidecar.inboundPort, cert: fx.probe.cert, key: fx.probe.key, ca: fx.probe.bundle, checkServerIdentity: () => undefined }));
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const states = sockets.map((socket) => {
    const state = { secure: false, closed: false };
    socket.on('secureConnect', () => (state.secure = true));
    socket.on('error', () => undefined);
    socket.on('close', () => (state.closed = true));
    return state;
  });
  await waitFor(async () => states.filter((s) => s.secure).length === 3, 5_000, 'three handshakes with the running worker');
  const handed = states.find((s) => !s.secure);
  t.equal(handed?.closed, false, 'the fourth, handed to the stopped worker, waits');

  await sidecar.process.waitFor((l) => l.msg === 'worker killed for missing its health checks; restarting it', 20_000);
  const closed = await waitFor(async () => handed?.closed === true, 5_000, 'the connection closed').then(() => true, () => false);
  t.ok(closed, 'the connection the stopped worker never took is closed within 5 s of its exit');
  t.equal(handed?.secure, false, 'closed without a handshake (the caller connects again)');
  for (const socket of sockets) socket.destroy();
  const released = await waitFor(async () => (await descriptors()) <= before, 5_000, 'the descriptors released').then(() => true, () => false);
  t.ok(released, `the primary back to its ${before} descriptors (now ${await descriptors()})`);
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 15_000, 'the replacement listening', sidecar.process);
});
