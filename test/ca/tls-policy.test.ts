// The CA's HTTPS port speaks the sidecars' TLS: 1.2 at least, on 1.2 only ECDHE with an AEAD
// cipher (no CBC suite, which Node's default list still offers), and no renegotiation. Every
// workload can reach this port, and renewals over mTLS ride it. Real TLS clients, a real CA.

import t from 'tap';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestCa, type TestCa } from '../helpers/ca.js';

let ca: TestCa;
let bundle: string;

t.before(async () => {
  ca = await startTestCa();
  bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
});
t.teardown(() => ca.close());

/** A TLS connection to the CA: the cipher agreed on, or the error code it failed with. */
function handshake(options: tls.ConnectionOptions): Promise<{ cipher?: string; error?: string; socket?: tls.TLSSocket }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: ca.server.port, ca: bundle, servername: 'localhost', ...options });
    socket.once('secureConnect', () => resolve({ cipher: socket.getCipher().standardName, socket }));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

t.test('TLS 1.2 with a CBC suite is refused; with an AEAD one it is served', async (t) => {
  for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA256']) {
    const { error, socket } = await handshake({ maxVersion: 'TLSv1.2', ciphers: cipher });
    socket?.destroy();
    t.ok(error, `${cipher}: refused (${String(error)})`);
  }
  const { cipher, socket } = await handshake({ maxVersion: 'TLSv1.2' });
  socket?.destroy();
  t.equal(cipher, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'a default TLS 1.2 client gets ECDHE with AES-GCM');
  const old = await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  old.socket?.destroy();
  t.ok(old.error, `TLS 1.1 is refused (${String(old.error)})`);
});

t.test('a client that renegotiates TLS 1.2 is refused', async (t) => {
  const { socket } = await handshake({ maxVersion: 'TLSv1.2' });
  if (!socket) return t.fail('no TLS 1.2 connection');
  t.teardown(() => socket.destroy());
  const outcome = await new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.renegotiate({}, (err) => resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated'));
  });
  t.not(outcome, 'renegotiated', `refused (${outcome})`);
  // and the port still serves
  const next = await handshake({});
  next.socket?.destroy();
  t.ok(next.socket, `a new connection is made (${String(next.error ?? 'no error')})`);
});
