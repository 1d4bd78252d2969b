// GET /debug/tls with workers: 2, for real: handshakes that fail (no client certificate) on new
// connections, which the primary hands to the workers in turn. The handshakes happen in the
// workers, so the primary's own list was always empty ({"failures": []} while the failures were
// counted in /metrics and logged); now the primary asks the workers and lists theirs, newest first,
// keeping at most 10 from one peer address as one process does (each worker kept 10: twice as many).

import t from 'tap';
import tls from 'node:tls';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture } from '../helpers/workers.js';

const fx = workersFixture(t);

/** One TLS connection that offers no client certificate; resolves once the server ended it. */
function handshakeWithoutCert(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fx.probe.bundle, checkServerIdentity: () => undefined, ALPNProtocols: ['h2'] });
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    // TLS 1.3: the server's refusal of the missing certificate arrives after the client's side is done
    socket.on('secureConnect', () => socket.write('x'));
  });
}

interface Failures {
  failures: Array<{ time: string; direction: string; reason: string; peer: string }>;
}

t.test('workers: 2: /debug/tls lists the failed handshakes every worker saw, newest first, 10 from one address', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  for (let i = 0; i < 4; i++) await handshakeWithoutCert(sidecar.inboundPort);
  let seen: Failures = { failures: [] };
  await waitFor(async () => {
    seen = JSON.parse((await sidecar.admin('/debug/tls')).body) as Failures;
    return seen.failures.length >= 4;
  }, 5_000, '/debug/tls listing the four failures', sidecar.process).catch((err: unknown) => t.fail(String(err)));
  t.equal(seen.failures.length, 4, `four failures listed (${seen.failures.length})`);
  t.ok(seen.failures.every((f) => f.direction === 'inbound' && f.reason === 'no_client_cert'), 'each an inbound handshake without a client certificate');
  const times = seen.failures.map((f) => f.time);
  t.same(times, [...times].sort().reverse(), 'newest first');
  // both workers took connections in turn: each logged its own first failure from this peer
  // their log lines come from two processes, and may arrive after /debug/tls lists the failures
  const loggers = () => new Set(sidecar.process.lines.filter((l) => l.component === 'tls').map((l) => l.worker));
  await waitFor(async () => loggers().size === 2, 5_000, 'a line from each worker').catch(() => undefined);
  const loggedBy = loggers();
  t.equal(loggedBy.size, 2, 'the failures happened in both workers');

  // 25 from this one address in all, about 12 in each worker (each keeps its newest 10)
  for (let i = 4; i < 25; i++) await handshakeWithoutCert(sidecar.inboundPort);
  await waitFor(async () => /meshcar_tls_handshake_failures_total\{[^}]*reason="no_client_cert"[^}]*\} 25\b/.test((await sidecar.admin('/metrics')).body), 5_000, 'the 25 failures counted', sidecar.process).catch((err: unknown) => t.fail(String(err)));
  seen = JSON.parse((await sidecar.admin('/debug/tls')).body) as Failures;
  t.equal(seen.failures.length, 10, `10 listed from one peer address, as README says (${seen.failures.length})`);
  const newest = seen.failures.map((f) => f.time);
  t.same(newest, [...newest].sort().reverse(), 'still newest first');
});
