// A certificate rotation that lands while a session to an upstream is being dialled: that
// handshake was begun with the old certificate, and a session carrying it would be cut by the
// callee when the old certificate expires, streams and all (the reason a rotation sheds the
// open sessions, UpstreamPool.identityRotated). The dial is made again with the new
// certificate (src/outbound/mutual-tls.ts, dialHttp2). A relay between the outbound and a real
// upstream holds the upstream's handshake bytes until the test has rotated the identity.

import t from 'tap';
import net, { type AddressInfo } from 'node:net';
import { validateSvid } from '../../src/identity/svid.js';
import { APP_ID, appIdentity, makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

/** A TCP relay to `port` that, while `hold` is set, keeps what the upstream sends. */
async function holdingRelay(port: number) {
  const state = { hold: true, connections: 0, held: [] as Array<() => void> };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => (state.hold ? state.held.push(() => client.write(chunk)) : client.write(chunk)));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    state,
    release() {
      state.hold = false;
      for (const write of state.held.splice(0)) write();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a session whose handshake began before a rotation is dialled again with the new certificate`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki);
    const relay = await holdingRelay(upstream.port);
    const identity = await appIdentity(pki);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`] }], { codec }, identity);
    t.teardown(async () => {
      await fx.close();
      await relay.close();
      await upstream.close();
    });
    const answer = request(fx.port);
    // the upstream's first flight (ServerHello...) is held: our certificate is not sent yet
    await waitFor(async () => relay.state.held.length > 0, 5000, 'the upstream answering the ClientHello');
    identity.swap(validateSvid(await pki.issue(APP_ID), APP_ID));
    const newSerial = identity.current().serialHex;
    relay.release();
    const res = await answer;
    t.equal(res.status, 200);
    t.equal(relay.state.connections, 2, 'the first dial was dropped and made again');
    t.equal(upstream.handshakes.at(-1)?.clientSerial, newSerial, 'the session that carried the request presented the new certificate');
    t.equal(res.json<{ callerId: string }>().callerId, APP_ID);
  });
}
