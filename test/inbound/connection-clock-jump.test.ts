// A caller's connection ends when the caller's certificate expires by the wall clock, also when
// the wall clock jumped there: a VM or laptop suspended and resumed, a clock stepped ahead. The
// connection's timer counts the process's running time; before, a connection whose caller's
// certificate had 50 min left went on serving that caller for 50 min of running time after a
// jump past its expiry. Now the process's one clock watch looks at the wall clock (every 30 s;
// here every 100 ms) for all connections together and each ends within a look of the jump. The
// test moves this process's Date (helpers/movable-clock.ts); TLS and sockets are real.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { memoryLogger } from '../helpers/ca.js';
import { FRONTEND_ID, startInbound } from '../helpers/inbound-fixture.js';
import { lookOftenAtTheClock, movableClock, waitFor } from '../helpers/movable-clock.js';

const MINUTE = 60_000;

/** An HTTP/1.1 keep-alive connection over mTLS that answered one request; `closed` once the server ends it. */
async function keptOpen(port: number, options: tls.ConnectionOptions, path: string): Promise<{ socket: tls.TLSSocket; closed: () => boolean; first: string }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...options });
  socket.on('error', () => {});
  let isClosed = false;
  socket.on('close', () => (isClosed = true));
  await once(socket, 'secureConnect');
  socket.setEncoding('utf8');
  let text = '';
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: orders\r\n\r\n`);
  await waitFor(() => /\r\n\r\n[\s\S]*\}/.test(text) || isClosed, 5000);
  return { socket, closed: () => isClosed, first: text };
}

t.test('the wall clock jumping past a caller certificate expiry ends its connections within a look', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const inbound = await startInbound({ logger: memoryLogger(lines, 'debug') });
  t.teardown(() => inbound.close());
  const restoreWatch = lookOftenAtTheClock(100);
  t.teardown(restoreWatch);
  // the caller's certificate lasts an hour; another caller's, three hours
  const shortLeaf = await inbound.pki.issue(FRONTEND_ID, { lifetimeMs: 60 * MINUTE });
  const longLeaf = await inbound.pki.issue(FRONTEND_ID, { lifetimeMs: 180 * MINUTE });
  const options = (leaf: typeof shortLeaf) => ({ ca: inbound.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined });
  const expiring = await Promise.all([1, 2, 3].map((n) => keptOpen(inbound.port, options(shortLeaf), `/short-${n}`)));
  const lasting = await keptOpen(inbound.port, options(longLeaf), '/long');
  for (const c of [...expiring, lasting]) t.match(c.first, /^HTTP\/1\.1 200/, 'answered, and kept open');
  t.ok(Date.parse(new X509Certificate(shortLeaf.certificatePem).validTo) - Date.now() > 55 * MINUTE, 'the short certificate has most of its hour left');

  // control: with the clock where it is, the connections stay (a few looks of the watch)
  t.notOk(await waitFor(() => expiring.some((c) => c.closed()), 500), 'nothing ends before the clock moves');

  const clock = movableClock();
  t.teardown(clock.restore);
  // 61 min pass by the wall clock in a moment: the short certificate has expired, the long one not
  clock.offset.ms = 61 * MINUTE;
  t.ok(await waitFor(() => expiring.every((c) => c.closed()), 5000), 'the three connections of the expired caller end within seconds');
  t.notOk(lasting.closed(), 'the caller whose certificate is still valid keeps its connection');
  const logged = lines.filter((l) => /caller's certificate expired/.test(String(l.msg)));
  t.equal(logged.length, 3, 'each end is logged as the expiry');
  lasting.socket.destroy();
});
