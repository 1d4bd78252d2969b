// A client that resets its connection right after sending a sign request is still named by its
// address: Node forgets a socket's peer once it is destroyed, and such requests were audited as
// from "unknown" and rate-limited together in one bucket of that name (a re-review: 60 of 60).
// Real TLS to a real CA server; the reset is a real RST (resetAndDestroy).

import t from 'tap';
import tls from 'node:tls';
import net from 'node:net';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';

t.test('a sign request whose client resets at once: audited with the client address', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const token = await caToken(ca.dir, 'orders', 600_000, false);
  const ROUNDS = 20;
  for (let i = 0; i < ROUNDS; i++) {
    // TLS over a TCP socket of our own, which can be reset (a TLS socket cannot)
    const raw = net.connect(ca.server.port, '127.0.0.1');
    await once(raw, 'connect');
    const socket = tls.connect({ socket: raw, ca: bundle, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const body = JSON.stringify({ csr: 'x'.repeat(2000) });
    socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, () => raw.resetAndDestroy());
    await once(raw, 'close');
  }
  // every request is audited once: wait for them (a denial is written when its handler ends)
  const deadline = Date.now() + 10_000;
  const audited = () => ca.logLines.filter((l) => l.event === 'ca.deny' || l.event === 'ca.issue');
  while (audited().length < ROUNDS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const lines = audited();
  t.ok(lines.length > 0, `${lines.length} of ${ROUNDS} requests audited`);
  t.same([...new Set(lines.map((l) => l.client))], ['127.0.0.1'], `every audit line names the client: ${JSON.stringify(lines.map((l) => [l.client, l.reason]).slice(0, 5))}`);
});
