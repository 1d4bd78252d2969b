// A sidecar paused past a request's deadline (SIGSTOP, a VM paused or starved of CPU) while the
// answer arrived: on resuming, Node runs its due timers before it reads what the sockets hold,
// so the deadline fired first and an answered request came back 504, and the outbound counted
// it against a healthy endpoint (one such pause ejected it). A deadline's timer now expires its
// requests after that turn's reads. Both sides: the outbound paused (its upstream deadline),
// the inbound paused (its app deadline). The pause is the point of the test: each waits until
// the answer is in the paused process's socket and the deadline is past, then resumes it.

import t from 'tap';
import http from 'node:http';
import { startMeshCa, startSidecar, httpGet, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { listening } from '../helpers/raw-http.js';

const DEADLINE_MS = 1000;

t.test('a paused sidecar whose answer came during the pause relays it, not 504', async (t) => {
  const held: Array<() => void> = [];
  let answered = 0;
  const app = http.createServer((req, res) => {
    held.push(() => {
      res.on('finish', () => answered++);
      res.end(`answered ${req.url}`);
    });
  });
  const appPort = await listening(t, app);
  const ca = await startMeshCa(t.testdir());
  t.teardown(() => ca.stop());
  const back = await startSidecar(ca, { service: 'api', inbound: { app: `http://127.0.0.1:${appPort}`, timeout: `${DEADLINE_MS}ms` } });
  t.teardown(() => back.stop('SIGKILL'));
  const upstream = (name: string, timeout: string) => ({ name, endpoints: [`127.0.0.1:${back.inboundPort}`], identity: 'spiffe://mesh.local/svc/api', timeout, outlierDetection: '{consecutiveFailures: 1}' });
  // `fast`: the outbound's own deadline is the one a pause of the outbound passes; `slow`: the
  // outbound waits longer than the inbound's app deadline, which a pause of the inbound passes
  const front = await startSidecar(ca, { service: 'web', upstreams: [upstream('fast', `${DEADLINE_MS}ms`), upstream('slow', '10s')] });
  t.teardown(() => front.stop('SIGKILL'));

  async function pausedOver(paused: RunningSidecar, host: string): Promise<{ status: number; body: string }> {
    const pid = paused.process!.child.pid!;
    const sent = performance.now();
    const before = answered;
    const call = httpGet(front.outboundPort, `/${host}`, { host });
    await waitFor(async () => held.length > 0, 10_000, 'the request reached the app');
    process.kill(pid, 'SIGSTOP');
    try {
      held.shift()!();
      await waitFor(async () => answered > before, 10_000, 'the app answered');
      // the answer is on its way into the paused process's socket; its deadline passes meanwhile
      await waitFor(async () => performance.now() - sent > DEADLINE_MS + 300, 10_000, 'the deadline passed');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    return call;
  }

  const outboundPaused = await pausedOver(front, 'fast');
  t.equal(outboundPaused.status, 200, `the outbound paused past its deadline relays the answer (${outboundPaused.body})`);
  t.equal(outboundPaused.body, 'answered /fast');
  const inboundPaused = await pausedOver(back, 'slow');
  t.equal(inboundPaused.status, 200, `the inbound paused past its app deadline relays the answer (${inboundPaused.body})`);
  t.equal(inboundPaused.body, 'answered /slow');
  const upstreams = await front.admin('/upstreams');
  t.notMatch(upstreams.body, /"state":"ejected"/, 'no endpoint was ejected');
});
