// The process's log output when stdout is not read (a stalled log shipper, a pipe nobody
// drains): memory stays bounded, the lines that did not fit are dropped and counted in
// meshcar_log_lines_dropped_total, and SIGTERM still ends the sidecar within its drain budget;
// when stdout fails for good (ENOSPC), SIGTERM does not wait for it at all.

import t from 'tap';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { startMeshCa, startSidecar, metricValue, rssOf, waitFor, httpGet, type MeshCa } from './helpers/mesh.js';

let ca: MeshCa;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
});
t.teardown(() => ca?.stop());

/** `total` GETs (at most `ms` long in all) through `concurrency` keep-alive connections; resolves with how many were answered. */
async function load(port: number, path: string, total: number, ms: number, concurrency = 16): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const deadline = Date.now() + ms;
  let sent = 0;
  let answered = 0;
  const one = () =>
    new Promise<void>((done) => {
      const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'nowhere' }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          answered++;
          done();
        });
      });
      req.on('error', () => done());
    });
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < total && Date.now() < deadline) {
      sent++;
      await one();
    }
  }));
  agent.destroy();
  return answered;
}

t.test('an unread stdout: bounded memory, dropped lines counted, SIGTERM still ends the sidecar', async (t) => {
  // outbound only; every request names an upstream that is not configured: a quick 404, one access line each
  const sidecar = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [{ name: 'orders', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/orders' }],
    access: true,
    drainTimeout: '2s',
  });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const pid = sidecar.process.child.pid as number;
  // from here nobody reads the sidecar's stdout: the pipe fills (64 KiB) and stays full
  sidecar.process.child.stdout?.pause();
  // each access line carries the path: ~7 KB a request
  const path = `/orders/${'a'.repeat(7000)}`;
  t.ok((await load(sidecar.outboundPort, path, 500, 10_000)) > 0, 'warm-up answered');
  const before = (await rssOf(pid)).rssMb;
  // bounded by count, and by a time that a slow or busy machine needs to reach it (2,810 in 12 s seen)
  const answered = await load(sidecar.outboundPort, path, 10_000, 40_000);
  const after = (await rssOf(pid)).rssMb;
  t.comment(`rss ${before.toFixed(0)} MB → ${after.toFixed(0)} MB after ${answered} requests (~${Math.round((answered * 7) / 1000)} MB of access lines)`);
  t.ok(answered >= 8000, `enough load to matter (${answered} answered)`);
  t.ok(after - before < 60, `rss grew ${(after - before).toFixed(0)} MB (< 60)`);
  const metrics = await sidecar.admin('/metrics');
  const dropped = metricValue(metrics.body, 'meshcar_log_lines_dropped_total');
  t.ok(dropped !== undefined && dropped > 0, `dropped lines counted (${dropped})`);
  // SIGTERM: the drain (2 s) and the last lines' flush are bounded; stdout is still never read
  const signalled = Date.now();
  sidecar.process.child.kill('SIGTERM');
  await waitFor(async () => sidecar.process.child.exitCode !== null || sidecar.process.child.signalCode !== null, 8000, 'sidecar exits after SIGTERM');
  t.equal(sidecar.process.child.exitCode, 0, 'exit 0');
  t.ok(Date.now() - signalled < 6000, `exited ${Date.now() - signalled} ms after SIGTERM`);
});

t.test('a stdout that fails for good (a full disk): SIGTERM does not wait out the drain budget for it', async (t) => {
  // the config the helper writes, with ports named in it: the run below cannot report its own
  const first = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [{ name: 'orders', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/orders' }],
    drainTimeout: '20s',
    namedPorts: true,
  });
  const adminPort = first.adminPort;
  await first.stop();
  // stdout on /dev/full: every write fails with ENOSPC, and sonic-boom tries again only when
  // another line comes; the closer waited the whole drainTimeout (20 s) for a drain that never came
  const full = openSync('/dev/full', 'w');
  const child = spawn(process.execPath, ['dist/cli.js', 'run', '--config', first.configFile], { stdio: ['ignore', full, 'ignore'] });
  closeSync(full);
  t.teardown(() => void child.kill('SIGKILL'));
  await waitFor(async () => (await httpGet(adminPort, '/ready').catch(() => ({ status: 0 }))).status === 200, 20_000, 'the sidecar on /dev/full ready');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const signalled = Date.now();
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000).unref())]);
  t.equal(code, 0, 'exit 0');
  t.ok(Date.now() - signalled < 12_000, `exited ${Date.now() - signalled} ms after SIGTERM, not at the 20 s budget`);
});

t.test('an exit with a stdout that fails for good: the last lines are dropped, the process ends', async (t) => {
  // sonic-boom's flushSync, which the exit ran, tries a write that failed with ENOSPC again for ever
  for (const when of ['after-error', 'at-once']) {
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, ['test/fixtures/log-then-exit.mjs', when], { stdio: ['ignore', full, 'ignore'] });
    closeSync(full);
    t.teardown(() => void child.kill('SIGKILL'));
    const code = await Promise.race([new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))), new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000).unref())]);
    t.equal(code, 3, `${when}: exits, with the code it asked for`);
  }
});
