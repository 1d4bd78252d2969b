// A peer whose chain file still holds an expired earlier copy of its issuer (same name and key:
// an issuer renewed, the old copy left beside the new) is verified by OpenSSL through the copy
// valid now. Node links the presented certificates by name and key, so the old copy can be the
// one linked, and its dates were counted: the outbound's window had ended before the first
// request, and each session to such an upstream was cut right after its first request went out
// (a POST run by the upstream's app, then 502 to the caller); the inbound refused such a caller
// for ten minutes after the old copy's end (its slack for a certificate that expired during the
// handshake). Both pass the copy over now (peer-validity.ts onAcceptedPath). Real TLS, the
// test CA's issuer re-issued with the same key and an end in the past.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makePki } from '../helpers/pki.js';
import { issueIssuerCertificate } from '../../src/ca/x509-profile.js';
import { peerIdentity } from '../../src/identity/peer-identity.js';
import { request, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const DAY_MS = 86_400_000;

/** The test CA's issuer again, same name and key, valid from two days ago until `endedAgoMs` ago. */
async function oldIssuerCopy(pki: Awaited<ReturnType<typeof makePki>>, endedAgoMs: number): Promise<string> {
  const start = Date.now() - 2 * DAY_MS;
  return (await issueIssuerCertificate(pki.root, new Date(Date.now() + 3650 * DAY_MS), pki.issuer.spki, TD, new Date(start), Date.now() - start - endedAgoMs)).pem;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`outbound (${codec}): an upstream presenting an expired copy of its issuer beside the current one is used`, async (t) => {
    const pki = await makePki(TD);
    const good = await pki.issue(UPSTREAM_ID);
    const leaf = { ...good, chainPem: good.certificatePem + (await oldIssuerCopy(pki, DAY_MS)) + pki.issuerPem };
    const upstream = await startUpstream(pki, { leaf });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(fx.port, { method: 'POST', body: 'x' })).status);
    t.same(statuses, [200, 200, 200, 200, 200], 'five POSTs answered');
    t.equal(upstream.requests, 5, 'each run once by the upstream');
    t.equal(upstream.handshakes.length, 1, 'on one session');
  });
}

t.test('inbound: a caller presenting an issuer copy that ended 5 minutes ago beside the current one is accepted', async (t) => {
  const pki = await makePki(TD);
  const server = await pki.issue(`spiffe://${TD}/svc/orders`);
  const caller = await pki.issue(`spiffe://${TD}/svc/frontend`);
  const listener = tls.createServer({ key: server.privateKeyPem, cert: server.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true });
  const verdict = new Promise<string>((resolve) => {
    listener.on('secureConnection', (socket) => {
      const result = peerIdentity(socket, TD);
      resolve(result.ok ? `accepted as ${result.id.uri}` : `refused: ${result.reason}: ${result.message}`);
      socket.destroy();
    });
    listener.on('tlsClientError', (err) => resolve(`handshake failed: ${err.message}`));
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => listener.close());
  const client = tls.connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, key: caller.privateKeyPem, cert: caller.certificatePem + (await oldIssuerCopy(pki, 5 * 60_000)) + pki.issuerPem, ca: pki.bundlePem, checkServerIdentity: () => undefined });
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  t.equal(await verdict, `accepted as spiffe://${TD}/svc/frontend`);
});
