// A trust bundle that loses a root cuts the open connections of callers whose certificates
// chain only to it: an HTTP/2 session's new streams and an HTTP/1.1 keep-alive connection's
// next request were served on the handshake's old verdict (up to the session's maximum age, and
// until the caller's certificate expired), while a new connection was refused. A caller under a
// root the bundle keeps, one whose path reaches the kept root through a cross certificate (a
// root rotation's middle step), one that sends its leaf twice before its issuer, and every caller
// when a root is only added, keep theirs. Real
// inbound, real mTLS clients (node:http2, node:https with a keep-alive agent), both codecs.

import t from 'tap';
import http2 from 'node:http2';
import https from 'node:https';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import { issueCrossCertificate } from '../../src/ca/x509-profile.js';
import { validateSvid } from '../../src/identity/svid.js';
import { memoryLogger } from '../helpers/ca.js';
import { startInbound, SERVER_ID, FRONTEND_ID, TD } from '../helpers/inbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import { waitUntil } from '../helpers/outbound-fixture.js';
import { inboundUnderTwoRoots } from '../helpers/two-roots.js';

/** A caller holding one HTTP/2 session and one HTTP/1.1 keep-alive connection to `port`. */
async function connectCaller(port: number, leaf: { privateKeyPem: string; chainPem: string }, ca: string) {
  const tlsOptions = { key: leaf.privateKeyPem, cert: leaf.chainPem, ca, checkServerIdentity: () => undefined };
  const session = http2.connect(`https://127.0.0.1:${port}`, tlsOptions);
  session.on('error', () => {});
  await once(session, 'connect');
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...tlsOptions });
  let h1Socket: Socket | undefined;
  const h2 = () =>
    new Promise<number | string>((resolve) => {
      if (session.destroyed) return resolve('the session was destroyed');
      const stream = session.request({ ':path': '/x' });
      stream.on('response', (headers) => resolve(headers[':status'] as number));
      stream.on('error', (err) => resolve(String(err)));
      stream.resume();
      stream.end();
    });
  const h1 = () =>
    new Promise<number | string>((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/x', agent }, (res) => {
        h1Socket = res.socket;
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err) => resolve(String(err)));
    });
  return {
    h2,
    h1,
    get h2Open() {
      return !session.closed && !session.destroyed;
    },
    get h1Socket() {
      return h1Socket;
    },
    close() {
      session.destroy();
      agent.destroy();
    },
  };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: callers under a root the bundle drops are cut, the others kept`, async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const fx = await startInbound({ codec, logger: memoryLogger(lines) });
    t.teardown(() => fx.close());
    const a = fx.pki;
    const b = await makePki(TD);
    const c = await makePki(TD);
    const both = a.bundlePem + b.bundlePem;
    // mid-rotation: the server trusts A and B
    fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: both }, SERVER_ID));
    const oldCaller = await connectCaller(fx.port, await fx.client(FRONTEND_ID), both);
    const newCaller = await connectCaller(fx.port, await b.issue(`spiffe://${TD}/svc/billing`), both);
    // a leaf of B's issuer presented with a cross certificate (B's key signed by A), as the CA hands out after `root activate`
    const crossed = await b.issue(`spiffe://${TD}/svc/reports`);
    const cross = await issueCrossCertificate(a.root, new Date(Date.now() + 86_400_000), b.root.spki, TD);
    const crossCaller = await connectCaller(fx.port, { ...crossed, chainPem: crossed.chainPem + cross.pem }, both);
    // a leaf of B under an issuer of its own (not in the server's chain), its leaf sent twice:
    // the walk of what a caller presented ended at the repeat, never reached the issuer, and cut it
    const repeated = await b.issueUnderShortIssuer(`spiffe://${TD}/svc/audit`, 86_400_000);
    const repeatCaller = await connectCaller(fx.port, { ...repeated, chainPem: repeated.certificatePem + repeated.certificatePem + repeated.issuerPem }, both);
    t.teardown(() => [oldCaller, newCaller, crossCaller, repeatCaller].forEach((caller) => caller.close()));
    for (const caller of [oldCaller, newCaller, crossCaller, repeatCaller]) t.same([await caller.h2(), await caller.h1()], [200, 200], 'served under A and B');
    const h1Sockets = [oldCaller, newCaller, crossCaller, repeatCaller].map((caller) => caller.h1Socket);

    // the control: a root added un-trusts no one
    fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: both + c.bundlePem }, SERVER_ID));
    for (const caller of [oldCaller, newCaller, crossCaller, repeatCaller]) t.same([await caller.h2(), await caller.h1()], [200, 200], 'a root added: still served');

    // A retired: the server's own certificate under B, its bundle B and C
    fx.identity.swap(validateSvid({ ...(await b.issue(SERVER_ID)), bundlePem: b.bundlePem + c.bundlePem }, SERVER_ID));
    await waitUntil(() => !oldCaller.h2Open && oldCaller.h1Socket?.destroyed === true, "the A caller's connections closed");
    t.not(await oldCaller.h2(), 200, 'the A caller: no new stream on its session');
    t.not(await oldCaller.h1(), 200, 'the A caller: no request on a new connection either');
    for (const caller of [newCaller, crossCaller, repeatCaller]) t.same([await caller.h2(), await caller.h1()], [200, 200], 'the B callers (one through the cross certificate, one sending its leaf twice): still served');
    t.ok(newCaller.h2Open && crossCaller.h2Open && repeatCaller.h2Open, 'on the same sessions');
    t.equal(repeatCaller.h1Socket, h1Sockets[3], 'and the same keep-alive connection (leaf sent twice)');
    t.equal(newCaller.h1Socket, h1Sockets[1], 'and the same keep-alive connection');
    t.equal(crossCaller.h1Socket, h1Sockets[2], 'and the same keep-alive connection (cross certificate)');
    const warned = lines.filter((line) => line.level === 40 && String(line.msg).includes('no longer holds'));
    t.equal(warned.length, 1, 'one warn line');
    t.match(warned[0], { connections: 2, peers: [FRONTEND_ID] }, 'naming the connections and the caller cut');
    // nothing was in flight on them: the line must not say requests were cut
    t.match(warned[0]?.msg, /^2 inbound connections closed, with any requests in flight on them: /, `what happened, true with nothing in flight (${String(warned[0]?.msg)})`);
  });
}

t.test('a handshake under way when the bundle drops its root is refused before its first request', async (t) => {
  const { fx, a, b, both } = await inboundUnderTwoRoots(t);
  // a relay that passes the ClientHello and holds the caller's next flight (its certificate), so
  // the server's context, fixed when it accepted, is the old bundle's when the certificate arrives
  const held: Buffer[] = [];
  let release: (() => void) | undefined;
  const relay = net.createServer((client) => {
    const server = net.connect(fx.port, '127.0.0.1');
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
    server.pipe(client);
    // the ClientHello (one write) passes; what follows is held until release()
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first) server.write(chunk);
      else held.push(chunk);
      first = false;
    });
    release = () => {
      for (const chunk of held.splice(0)) server.write(chunk);
      client.removeAllListeners('data');
      client.pipe(server);
    };
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.teardown(() => relay.close());
  const port = (relay.address() as AddressInfo).port;

  const caller = await fx.client(FRONTEND_ID);
  const socket = tls.connect({ host: '127.0.0.1', port, key: caller.privateKeyPem, cert: caller.chainPem, ca: both, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      // an answer's head is enough (without the check the connection stays open)
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => {});
  });
  socket.once('secureConnect', () => socket.write('GET /x HTTP/1.1\r\nhost: orders\r\n\r\n'));
  await waitUntil(() => held.length > 0, "the caller's certificate flight held");
  fx.identity.swap(validateSvid({ ...(await b.issue(SERVER_ID)), bundlePem: b.bundlePem }, SERVER_ID));
  release?.();
  const text = await answer;
  t.notMatch(text, /^HTTP\/1\.1 200/, 'no answer: the connection was closed');
  t.same(await fx.observer.waitForTlsFailures(1), [{ direction: 'inbound', reason: 'unknown_ca' }], 'counted as unknown_ca');
});
