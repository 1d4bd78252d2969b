// A certificate rotation that lands after a dial's TLS handshake but before the upstream's
// SETTINGS (a busy upstream, or one a round trip away): the rotation sheds the pool's sessions
// (UpstreamPool.identityRotated), but this one was not adopted yet; adopted after it, it kept
// the old certificate and carried every later request to its maximum age (the callee cuts a
// connection when the certificate it was opened with expires, streams and all). Now the request
// that started the dial is served on it, and later ones go on a new session with the new
// certificate. The upstream here is a real TLS server that holds each connection, handshake
// done, until the test lets node:http2 have it.

import t from 'tap';
import tls from 'node:tls';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { validateSvid } from '../../src/identity/svid.js';
import { APP_ID, appIdentity, makePki, request, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

const serialOf = (socket: tls.TLSSocket) => (socket.getPeerX509Certificate()?.serialNumber ?? '').toLowerCase().replace(/^0+/, '');

/** An h2 upstream whose connections wait, handshake done, while `held` (their SETTINGS not sent); each answer says the client certificate's serial. */
async function settingsHoldingUpstream(pki: Awaited<ReturnType<typeof makePki>>) {
  const leaf = await pki.issue(UPSTREAM_ID);
  const h2 = http2.createServer();
  h2.on('session', (session) => session.on('error', () => undefined));
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end(JSON.stringify({ clientSerial: serialOf(stream.session!.socket as unknown as tls.TLSSocket) }));
  });
  const state = { held: true, waiting: [] as tls.TLSSocket[], handshakes: [] as string[] };
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (socket) => {
    socket.on('error', () => undefined);
    state.handshakes.push(serialOf(socket));
    if (state.held) state.waiting.push(socket);
    else h2.emit('connection', socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    state,
    release() {
      state.held = false;
      for (const socket of state.waiting.splice(0)) h2.emit('connection', socket);
    },
    close() {
      for (const socket of state.waiting) socket.destroy();
      h2.close();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a rotation while the upstream's SETTINGS are awaited: later requests go on a session with the new certificate`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await settingsHoldingUpstream(pki);
    const identity = await appIdentity(pki);
    const oldSerial = identity.current().serialHex.toLowerCase().replace(/^0+/, '');
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec }, identity);
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const first = request(fx.port);
    // our handshake is done (the upstream saw our certificate); its SETTINGS are held
    await waitFor(async () => upstream.state.waiting.length === 1, 5000, 'the handshake done at the upstream');
    t.same(upstream.state.handshakes, [oldSerial], 'the dial presented the old certificate');
    const next = validateSvid(await pki.issue(APP_ID), APP_ID);
    identity.swap(next);
    const newSerial = next.serialHex.toLowerCase().replace(/^0+/, '');
    upstream.release();
    const answer = await first;
    t.equal(answer.status, 200, 'the request that started the dial is served');
    t.equal(JSON.parse(answer.text).clientSerial, oldSerial, 'on that session');
    const later: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(fx.port);
      later.push(res.status === 200 ? String(JSON.parse(res.text).clientSerial) : `status ${res.status}`);
    }
    t.same(later, [newSerial, newSerial, newSerial], 'every later request presented the new certificate');
    await waitFor(async () => fx.outbound.sessionCount('payments') === 1, 5000, 'the old session closed');
  });
}
