// POST /v1/sign with Expect: 100-continue: the CA says "100 Continue" only once the request is
// authenticated. A client without a valid token gets its 401 before it sends the body (and the
// connection closes, the body never read); one with a valid token gets the 100, sends the
// CSR and gets its certificate. Before, Node's server sent the 100 to anyone at once, inviting
// every unauthenticated client to upload up to the body limit. Raw TLS, so what comes first on
// the wire is seen as it is.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { startSigningCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

/** A TLS connection to the CA that collects what it receives. */
async function connect(port: number, bundle: string): Promise<{ socket: tls.TLSSocket; received: () => string; closed: Promise<unknown> }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: bundle });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  await once(socket, 'secureConnect');
  return { socket, received: () => text, closed };
}

/** Waits (bounded) until `received()` matches. */
async function until(received: () => string, pattern: RegExp, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!pattern.test(received())) {
    if (Date.now() - start > ms) throw new Error(`not received within ${ms} ms: ${pattern} (got ${JSON.stringify(received())})`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

t.test('a request with a bad token is refused before its body: no 100, a 401, the connection closed', async (t) => {
  const { ca, bundle } = await startSigningCa();
  t.teardown(() => ca.close());
  const { socket, received, closed } = await connect(ca.server.port, bundle);
  t.teardown(() => socket.destroy());
  socket.write('POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer not.a.token\r\nContent-Type: application/json\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n');
  await closed;
  t.match(received(), /^HTTP\/1\.1 401 /, 'the first thing on the wire is the 401');
  t.notMatch(received(), /100 Continue/);
  t.match(received(), /"error":"bad_token"/);
});

t.test('a request with a valid token gets the 100, then its certificate', async (t) => {
  const { ca, bundle, token } = await startSigningCa();
  t.teardown(() => ca.close());
  const pair = await generateWorkloadKey();
  const body = JSON.stringify({ csr: await buildCsr(createPrivateKey(pair.privateKeyPem), createPublicKey(pair.publicKeyPem), ORDERS) });
  const { socket, received } = await connect(ca.server.port, bundle);
  t.teardown(() => socket.destroy());
  socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`);
  await until(received, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  socket.write(body);
  await until(received, /HTTP\/1\.1 200 [\s\S]*"certificate"/);
  t.pass('100 Continue, then 200 with the certificate');
});

t.test('an authenticated request whose head already says its body will be refused gets that answer, not a 100', async (t) => {
  const { ca, bundle, token } = await startSigningCa();
  t.teardown(() => ca.close());
  const cases: Array<[string, string, RegExp]> = [
    ['a declared body over 64 KiB', 'Content-Type: application/json\r\nContent-Length: 100000', /^HTTP\/1\.1 413 [\s\S]*"error":"body_too_large"/],
    ['a body that is not JSON', 'Content-Type: text/plain\r\nContent-Length: 100', /^HTTP\/1\.1 400 [\s\S]*"error":"bad_request"[\s\S]*content-type must be application\/json/],
  ];
  for (const [what, fields, answer] of cases) {
    const { socket, received } = await connect(ca.server.port, bundle);
    t.teardown(() => socket.destroy());
    socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n${fields}\r\nExpect: 100-continue\r\n\r\n`);
    await until(received, /^HTTP\/1\.1 (?!100)\d{3} [\s\S]*\}$/);
    t.match(received(), answer, `${what}: the refusal is the first thing on the wire`);
    t.notMatch(received(), /100 Continue/, `${what}: no 100 before it`);
  }
});
