// A worker whose messages are malformed (test/fixtures/malformed-worker.cjs: what a bug in a
// worker could send), for real: a sidecar with two workers, real mTLS requests. The primary
// takes a message or an answer only with the fields and the shape its type has
// (src/workers/answer-shapes.ts, messages.ts):
// - /metrics, /endpoints, /workers, /upstreams and /debug/tls answer 200 with the other worker's counts,
//   the malformed one counted or listed as not answering (an unknown aggregator made /metrics
//   500, a row-less /endpoints answer 500, a BigInt in a status 500 on /workers; a 2 MB failed
//   handshake was sent on whole);
// - the malformed worker killed, the primary runs on and replaces it (its /endpoints answer,
//   kept as its last counts, was merged at its exit in the primary's 'exit' listener, and the
//   TypeError ended the primary and every worker with it); a BigInt port in its 'listening'
//   ended the primary in JSON.stringify;
// - the drops are logged, once per worker per 10 s.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { startSidecar, metricValue, waitFor } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('a worker sending malformed messages costs its own answers, never the primary', { timeout: 40_000 }, async (t) => {
  const malformed = fileURLToPath(new URL('../fixtures/malformed-worker.cjs', import.meta.url));
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2', nodeArgs: ['--require', malformed], logLevel: 'debug' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  for (let i = 0; i < 4; i++) t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, `request ${i + 1} served`);

  const metrics = await sidecar.admin('/metrics');
  t.equal(metrics.status, 200, `/metrics: 200 (${metrics.body.slice(0, 120)})`);
  t.notMatch(metrics.body, /forged_total/, "worker 1's family is not on the page");
  t.equal(metricValue(metrics.body, 'meshcar_workers_unresponsive'), 1, 'worker 1 counts as not answering');
  // the burst worker 1 sent at that ask (a BigInt port, a hello storm, ...) is handled by now
  await sidecar.process.waitFor((l) => l.msg === 'a message from the worker without the fields its type has was dropped', 5_000);

  const endpoints = await sidecar.admin('/endpoints');
  t.equal(endpoints.status, 200, `/endpoints: 200 (${endpoints.body.slice(0, 120)})`);
  const rows = endpoints.status === 200 ? (JSON.parse(endpoints.body) as { endpoints: Array<{ count: number }> }).endpoints : [];
  t.ok(rows.length > 0 && rows.every((r) => typeof r.count === 'number'), "the other worker's rows");
  const tls = await sidecar.admin('/debug/tls');
  t.equal(tls.status, 200, `/debug/tls: 200 (${tls.body.slice(0, 120)})`);
  t.same(JSON.parse(tls.body), { failures: [] }, "worker 1's numbers are not listed as failed handshakes");
  const long = await sidecar.admin('/debug/tls');
  t.same([long.status, long.body.length < 1000], [200, true], `nor its 2 MB one (/debug/tls: ${long.status}, ${long.body.length} bytes)`);
  const upstreams = await sidecar.admin('/upstreams');
  t.equal(upstreams.status, 200, `/upstreams: 200 (${upstreams.body.slice(0, 120)})`);
  t.same(upstreams.status === 200 ? (JSON.parse(upstreams.body) as { workers: unknown[] }).workers.find((w) => (w as { id: number }).id === 1) : undefined, { id: 1, unresponsive: true }, '/upstreams: worker 1 listed as not answering, not with what it forged');
  const listed = await sidecar.admin('/workers');
  t.equal(listed.status, 200, `/workers: 200 (${listed.body.slice(0, 120)})`);
  const view = (listed.status === 200 ? JSON.parse(listed.body) : { workers: [] }) as Awaited<ReturnType<typeof workersOf>>;
  const one = view.workers.find((w) => w.id === 1);
  t.equal(view.workers.length, 2, 'two workers listed');
  t.equal(one?.unresponsive, true, '/workers: worker 1 listed as not answering');
  t.not(one?.serial, 'forged', "and not with what it forged");
  t.ok(view.workers.every((w) => w.id !== 99), 'no worker takes the id a status made up');

  const refused = sidecar.process.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith("worker 1's answer to metrics was refused (a family without a known aggregator)"));
  t.equal(refused.length, 1, 'the refused metrics answer is said at warn, once');
  t.equal(refused[0]?.level, 40);
  const dropped = sidecar.process.lines.filter((l) => l.msg === 'a message from the worker without the fields its type has was dropped');
  t.equal(dropped.length, 1, 'the malformed messages logged once for worker 1 (one line per 10 s)');
  // debug: the primary logs each hello it takes (and answers with the SVID and the config)
  t.equal(sidecar.process.lines.filter((l) => l.msg === 'worker said hello' && l.worker === 1).length, 1, "worker 1's 1,000 extra hellos are ignored: one taken");

  // its pid from the log: /workers is what is under test
  process.kill(sidecar.process.lines.find((l) => l.msg === 'worker listening' && l.worker === 1)?.workerPid as number, 'SIGKILL');
  await sidecar.process.waitFor((l) => l.msg === 'worker exited unexpectedly; restarting it' && l.worker === 1, 5_000);
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200, 15_000, 'the replacement listening', sidecar.process);
  t.equal(sidecar.process.child.exitCode, null, 'the primary runs on after the malformed worker died');
  t.equal((await sidecar.admin('/endpoints')).status, 200, '/endpoints: 200 with the replacement');
  t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, 'served after the replacement');
});
