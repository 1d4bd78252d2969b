// A drain that runs out with gRPC calls open (workers: 2), for real: a sidecar with two workers
// in front of a grpc-js app over h2c, `drainTimeout: 2s`, a server-streaming call on each worker
// from a caller whose stream window is 0 (so a call's status cannot go out behind its queued
// messages and its connection stays open). At the drain's end each side gives the calls it cut
// up to 250 ms for their statuses (GRPC_CUT_GRACE_MS): a worker's drain ran that long past the
// timeout it was given, into the tenth of the budget kept for its exit (200 ms here), and every
// such worker was SIGKILLed at drainTimeout, logged as "still running after the drain timeout"
// (the line for a stopped or stuck worker), before it closed what it had left itself. Now the
// workers' timeout leaves room for that overrun: each drains, cuts and stops on its own before
// drainTimeout.

import t from 'tap';
import http2 from 'node:http2';
import { startSidecar } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';
import { startMixedGrpcApp } from '../helpers/mixed-flows.js';

const fx = workersFixture(t);

/** A Ticks call (1,000 messages, one every 20 ms) on a new mTLS connection that takes no DATA: resolves once its head is in. */
function stuckTicks(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { cert: fx.probe.cert, key: fx.probe.key, ca: fx.probe.bundle, checkServerIdentity: () => undefined, settings: { initialWindowSize: 0 } });
    session.on('error', () => undefined);
    const req = session.request({ ':method': 'POST', ':path': '/meshcar.test.Mixed/Ticks', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => undefined);
    req.once('response', () => resolve(session));
    req.once('close', () => reject(new Error('the call closed before its head')));
    const message = Buffer.from(JSON.stringify({ count: 1000, every: 20 }));
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    req.end(frame);
  });
}

t.test('workers cutting gRPC calls at the drain timeout stop by themselves, before drainTimeout', { timeout: 30_000 }, async (t) => {
  const app = await startMixedGrpcApp();
  t.teardown(() => app.stop());
  const sidecar = await startSidecar(fx.ca, { service: 'grpcapp', inbound: { app: `h2c://127.0.0.1:${app.port}`, timeout: '30s' }, drainTimeout: '2s', extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const pids = (await workersOf(sidecar)).workers.map((w) => w.pid);
  // two connections: the primary hands them to the two workers in turn
  const sessions = [await stuckTicks(sidecar.inboundPort), await stuckTicks(sidecar.inboundPort)];
  t.teardown(() => sessions.forEach((s) => s.destroy()));

  const started = Date.now();
  const code = await sidecar.stop('SIGTERM');
  const took = Date.now() - started;
  t.equal(code, 0, 'exit 0');
  const lines = sidecar.process.lines;
  const at = (l: Record<string, unknown>) => (typeof l.time === 'string' ? Date.parse(l.time) : Number(l.time)) - started;
  const timeline = () => lines.filter((l) => at(l) >= -50).map((l) => `${at(l)} ms, worker ${String(l.worker ?? '-')}: ${String(l.msg).slice(0, 80)}`);
  // each worker finished its drain itself, before drainTimeout: cut the calls, gave their
  // statuses their 250 ms, closed what was left and said `stopped` (a worker killed at
  // drainTimeout says nothing more; on a loaded machine one that stopped may still be killed
  // while it exits, which costs it nothing but its last moments)
  const stopped = lines.filter((l) => l.msg === 'stopped' && l.worker !== undefined);
  t.same(stopped.map((l) => l.worker).sort(), [1, 2], 'each worker drained and stopped by itself', stopped.length < 2 ? { timeline: timeline() } : {});
  t.ok(stopped.every((l) => at(l) < 2_000), `before drainTimeout (${stopped.map(at).join(', ')} ms)`);
  t.ok(took < 3_500, `the shutdown took ${took} ms (drainTimeout 2 s, its last log lines included)`);
  t.same(pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }), [], 'no worker left running');
});
