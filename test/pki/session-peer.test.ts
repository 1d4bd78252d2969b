// The caller's leaf read out of a real TLS session's DER (what the inbound keys its cache of
// caller certificates by): the same bytes as Node's own copy of the peer certificate, on TLS
// 1.2 and 1.3, full and resumed handshakes, leaf alone or leaf + issuer; and nothing (no
// throw) from a session without a peer or bytes of another shape.

import t from 'tap';
import tls, { type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makePki } from '../helpers/pki.js';
import { sessionPeerCertificate } from '../../src/pki/session-peer.js';

const TD = 'mesh.test';

interface Seen {
  readonly fromSession: Buffer | undefined;
  readonly fromNode: Buffer | undefined;
  readonly resumed: boolean;
}

t.test('the peer certificate inside real TLS sessions', async (t) => {
  const pki = await makePki(TD);
  const server = await pki.issue(`spiffe://${TD}/svc/orders`);
  const client = await pki.issue(`spiffe://${TD}/svc/frontend`);
  const seen: Seen[] = [];
  const listener = tls.createServer({ key: server.privateKeyPem, cert: server.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
    const session = socket.getSession();
    seen.push({ fromSession: session && sessionPeerCertificate(session), fromNode: socket.getPeerX509Certificate()?.raw, resumed: socket.isSessionReused() });
    socket.end('x');
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => listener.close());
  const port = (listener.address() as AddressInfo).port;

  /** One connection; resolves with the session the client may resume next time. */
  const connect = (options: tls.ConnectionOptions): Promise<Buffer | undefined> =>
    new Promise((resolve, reject) => {
      let session: Buffer | undefined;
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.bundlePem, checkServerIdentity: () => undefined, ...options });
      socket.on('session', (s: Buffer) => (session = s));
      socket.on('error', reject);
      socket.resume();
      socket.on('close', () => resolve(session));
    });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    for (const [what, cert] of [['leaf + issuer', client.chainPem], ['leaf alone', client.certificatePem]] as const) {
      t.test(`${version}, the client presents its ${what}`, async (t) => {
        seen.length = 0;
        const options = { key: client.privateKeyPem, cert, minVersion: version, maxVersion: version };
        const ticket = await connect(options);
        t.ok(ticket, 'the server gave a session to resume');
        await connect({ ...options, session: ticket });
        t.equal(seen.length, 2);
        t.same(seen.map((s) => s.resumed), [false, true], 'a full handshake, then a resumed one');
        for (const s of seen) {
          t.ok(s.fromSession, 'the session holds the peer certificate');
          t.ok(s.fromNode, "Node's copy of it");
          t.ok(s.fromSession?.equals(s.fromNode as Buffer), `the same bytes (${s.resumed ? 'resumed' : 'full'} handshake)`);
        }
      });
    }
  }

  t.test('a session without a peer certificate, and bytes of another shape', async (t) => {
    seen.length = 0;
    await connect({}); // no client certificate: the lenient server lets it finish
    t.equal(seen[0]?.fromNode, undefined, 'Node has no peer certificate');
    t.equal(seen[0]?.fromSession, undefined, 'nor has the session');
    const leaf = Buffer.from(client.certificatePem.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64');
    for (const [name, bytes] of [
      ['empty', Buffer.alloc(0)],
      ['a certificate, not a session', leaf],
      ['a SEQUENCE whose length runs past the end', Buffer.from([0x30, 0x82, 0x10, 0x00, 0xa3, 0x02, 0x30, 0x00])],
      ['[3] holding something else than a certificate', Buffer.from([0x30, 0x04, 0xa3, 0x02, 0x04, 0x00])],
      ['[3] whose certificate is shorter than the tag', Buffer.from([0x30, 0x06, 0xa3, 0x04, 0x30, 0x01, 0x05, 0x00])],
      ['a long-form length of five bytes', Buffer.from([0x30, 0x85, 0, 0, 0, 0, 4, 0xa3, 0x02, 0x30, 0x00])],
    ] as const) {
      t.equal(sessionPeerCertificate(bytes), undefined, name);
    }
  });
});
