// A caller whose path ends at a bundle root that expires before its leaf (an operator's PKI
// through identity.files: our CA never lets a leaf outlive its root): once the root has
// expired a full handshake is refused (OpenSSL checks the anchor's dates), and so now is a
// resumed TLS session, and an HTTP/2 connection opened before is closed at the root's end. The
// path window (identity/peer-validity.ts) counted only the certificates the caller presented,
// so a resumed session was served until the leaf's end (a new ticket each time) and an open
// session took new requests until maxSessionAge. Real mTLS, real tickets, a test PKI whose
// root ends a few seconds on. (The outbound's ticket and session watch read the same window.)

import t from 'tap';
import tls from 'node:tls';
import http2 from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { makePki, type TestPki } from '../helpers/pki.js';
import { FRONTEND_ID, SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';

const TD = 'mesh.test';

t.test('a caller past its root\'s end: no resumed session, no open connection', async (t) => {
  const longPki = await makePki(TD);
  const shortPki = await makePki(TD, 4_000);
  const both = longPki.bundlePem + shortPki.bundlePem;
  // the server's SVID under the long root, the caller's under the short one; both trusted
  const pki: TestPki = { ...longPki, bundlePem: both, issue: async (id, options) => ({ ...(await (id === SERVER_ID ? longPki : shortPki).issue(id, options)), bundlePem: both }) };
  const rootEnd = Date.parse(new X509Certificate(shortPki.rootPem).validTo);
  const fx = await startInbound({ pki, sessionResumption: true });
  t.teardown(() => fx.close());
  const options = await fx.tlsOptions(FRONTEND_ID);

  /** One HTTP/1.1 request on a new connection (resuming `session` if given): its status line, whether it resumed, the ticket offered. */
  const ask = (session?: Buffer) =>
    new Promise<{ status: string; resumed: boolean; ticket?: Buffer }>((resolve) => {
      let text = '';
      let ticket: Buffer | undefined;
      let resumed = false;
      const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: ['http/1.1'], ...options, ...(session ? { session } : {}) });
      socket.setEncoding('utf8');
      socket.on('secureConnect', () => {
        resumed = socket.isSessionReused();
        socket.write('GET /x HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
      });
      socket.on('session', (s: Buffer) => (ticket = s));
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ status: text.split('\r\n')[0] ?? '', resumed, ticket }));
    });

  const first = await ask();
  t.equal(first.status, 'HTTP/1.1 200 OK', 'before the root\'s end: served');
  t.ok(first.ticket, 'with a ticket');
  const h2 = http2.connect(`https://127.0.0.1:${fx.port}`, options as http2.SecureClientSessionOptions);
  h2.on('error', () => {});
  const closed = new Promise<number>((resolve) => h2.once('close', () => resolve(Date.now())));
  const status = await new Promise<number>((resolve, reject) => {
    const req = h2.request({ ':path': '/before', ':authority': 'orders' });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
    req.end();
  });
  t.equal(status, 200, 'an HTTP/2 session opened before: served');

  // the root's end, a condition on the clock (what the test is about)
  while (Date.now() <= rootEnd + 200) await new Promise((r) => setTimeout(r, Math.max(10, rootEnd + 250 - Date.now())));
  const closedAt = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(NaN), 5_000))]);
  t.ok(closedAt >= rootEnd && closedAt < rootEnd + 5_000, 'the open HTTP/2 session is closed at the root\'s end');
  const resumed = await ask(first.ticket);
  t.not(resumed.status, 'HTTP/1.1 200 OK', `resuming its ticket after the root's end: not served (${resumed.status || 'closed'})`);
  const full = await ask();
  t.not(full.status, 'HTTP/1.1 200 OK', 'a full handshake: refused, as before');
});
