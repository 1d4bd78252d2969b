// TLS 1.2 renegotiation is refused on both sidecar hops. A caller that renegotiates gets
// `no_renegotiation`: each renegotiation is a full handshake (key exchange, signature, the
// caller's chain verified again) on a connection the per-address handshake cap no longer
// counts, a caller may present another certificate in it than the one its connection was
// authorized on, and HTTP/2 forbids it (RFC 9113 §9.2.1). Node alone allowed three per
// connection every 10 minutes. An upstream asking the outbound to renegotiate
// (HelloRequest) is refused the same way. Real TLS 1.2 clients and servers, a real inbound.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { startInbound, SERVER_ID } from '../helpers/inbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { connectMutualTls } from '../../src/outbound/mutual-tls.js';

const CLIENT_ID = 'spiffe://mesh.test/svc/frontend';

/** What became of a renegotiation asked for on `socket`: the error it ended in, or 'renegotiated'. */
function renegotiate(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer in 3 s'), 3000);
    const done = (outcome: string) => {
      clearTimeout(timer);
      resolve(outcome);
    };
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('close', () => done('closed'));
    const asked = socket.renegotiate({}, (err) => done(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated'));
    if (!asked) done('not asked');
  });
}

// with session tickets off (the default: a secure option of its own) and on
for (const sessionResumption of [false, true]) {
  t.test(`a caller that renegotiates TLS 1.2 is refused, and its next connection is served (sessionResumption: ${String(sessionResumption)})`, async (t) => {
    const fx = await startInbound({ sessionResumption });
    t.teardown(() => fx.close());
    const options = { ...(await fx.tlsOptions()), host: '127.0.0.1', port: fx.port, maxVersion: 'TLSv1.2' as const, ALPNProtocols: ['http/1.1'] };
    const socket = tls.connect(options);
    socket.on('error', () => {});
    t.teardown(() => socket.destroy());
    await once(socket, 'secureConnect');
    t.equal(socket.getProtocol(), 'TLSv1.2', 'a TLS 1.2 connection');
    const outcome = await renegotiate(socket);
    t.not(outcome, 'renegotiated', `the renegotiation is refused (${outcome})`);

    // the refusal is for the renegotiation, not the caller
    const next = tls.connect(options);
    next.on('error', () => {});
    t.teardown(() => next.destroy());
    await once(next, 'secureConnect');
    next.write('GET /after HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
    let text = '';
    next.setEncoding('utf8');
    next.on('data', (chunk: string) => (text += chunk));
    await once(next, 'close');
    t.match(text, /^HTTP\/1\.1 200/, 'a new connection is served');
  });
}

t.test('the outbound refuses an upstream that asks it to renegotiate', async (t) => {
  const pki = await makePki('mesh.test');
  const upstream = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(CLIENT_ID), CLIENT_ID), pino({ level: 'silent' }));
  const asked: Array<Promise<string>> = [];
  // a hostile upstream: TLS 1.2 only, and a HelloRequest as soon as the handshake is done
  const server = tls.createServer({ key: upstream.privateKeyPem, cert: upstream.chainPem, ca: upstream.bundlePem, ...MTLS_SERVER_OPTIONS, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', () => {});
    asked.push(renegotiate(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const socket = await connectMutualTls({ address: '127.0.0.1', port, key: `127.0.0.1:${port}` } as Parameters<typeof connectMutualTls>[0], {
    identity,
    checkServerIdentity: verifyServerSpiffeId(SERVER_ID),
    alpn: ['h2'],
    timeoutMs: 3000,
  });
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  // the client answers the HelloRequest only when it reads: read what comes
  socket.resume();
  t.equal(asked.length, 1, 'the upstream asked');
  const outcome = await asked[0];
  t.not(outcome, 'renegotiated', `the outbound did not renegotiate (${String(outcome)})`);
});
