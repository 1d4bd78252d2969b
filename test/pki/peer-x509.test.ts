// peerX509 (src/pki/peer-x509.ts): Node hands a socket's presented issuer chain out on the first
// getPeerX509Certificate() only; every inbound reader goes through peerX509, so the window's
// reader (peerIdentity) reading first leaves the bundle check (callerChains) the whole path.
// Real mutual TLS with certificates from a test PKI (root → issuer → leaf).

import t from 'tap';
import tls, { type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makePki } from '../helpers/pki.js';
import { peerX509 } from '../../src/pki/peer-x509.js';
import { peerIdentity } from '../../src/identity/peer-identity.js';
import { callerChains } from '../../src/inbound/caller-trust.js';

t.test("the caller's presented path is there for every reader, whoever read it first", async (t) => {
  const pki = await makePki('mesh.test');
  const server = await pki.issue('spiffe://mesh.test/svc/orders');
  const caller = await pki.issue('spiffe://mesh.test/svc/frontend');
  const root = new X509Certificate(pki.rootPem);
  const seen: Array<{ same: boolean; issuers: string[]; chains: boolean; ok: boolean }> = [];
  const listener = tls.createServer({ key: server.privateKeyPem, cert: server.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
    // the window's reader first, with no bundle named (the moments after a bundle change: it reads the path)
    const result = peerIdentity(socket, 'mesh.test', Date.now(), undefined);
    const first = peerX509(socket);
    const again = peerX509(socket);
    seen.push({ same: first === again, issuers: [again?.issuerCertificate?.subject ?? 'none'], chains: callerChains(socket, [root]), ok: result.ok });
    socket.end();
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => listener.close());
  const client = tls.connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, key: caller.privateKeyPem, cert: caller.chainPem, ca: pki.bundlePem, checkServerIdentity: () => undefined });
  client.on('error', () => undefined);
  client.resume();
  await once(client, 'close');
  t.equal(seen.length, 1);
  t.ok(seen[0]?.ok, 'the caller is accepted');
  t.ok(seen[0]?.same, 'every call gives the first read');
  t.match(seen[0]?.issuers[0], /meshcar issuer CA/, 'with the issuer the caller presented');
  t.ok(seen[0]?.chains, 'so the bundle check after a change finds its path to the root (it cut callers whose root had come back)');
});
