// WebSocket tunnels hold circuit-breaker slots (circuitBreaker.maxRequests) as requests do, from
// their dial until the app's connection closes: past the limit an Upgrade is answered 503
// circuit_open, and a closed tunnel frees its slot. They went around the breaker: 20 of 20
// upgrades opened tunnels under maxRequests 2 (the resilience review), one dedicated mTLS
// connection each, with no other bound.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { makePki, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { waitFor } from '../h2/fixtures/h2-helpers.js';

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: payments\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** An app connection that asked for an upgrade: what it has read so far. */
async function upgradeFrom(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  socket.write(UPGRADE);
  await waitFor(() => text.includes('\r\n\r\n'), 'an answer head');
  return { socket, head: () => text.slice(0, text.indexOf('\r\n\r\n')) };
}

t.test('tunnels count against maxRequests, and a closed one frees its slot', async (t) => {
  const pki = await makePki(TD);
  const leaf = await pki.issue(UPSTREAM_ID);
  // an upstream that switches every upgrade and keeps the tunnel open
  let tunnels = 0;
  const upstream = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, ...MTLS_SERVER_OPTIONS, ALPNProtocols: ['http/1.1'] }, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      tunnels++;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const fx = await startBalanced(pki, { ports: [(upstream.address() as AddressInfo).port], circuitBreaker: { maxRequests: 2, maxPending: 2 } });
  const apps: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of apps) s.destroy();
    await fx.close();
    upstream.close();
  });

  for (let i = 0; i < 2; i++) {
    const app = await upgradeFrom(fx.port);
    apps.push(app.socket);
    t.match(app.head(), /^HTTP\/1\.1 101 /, `tunnel ${i + 1} opens`);
  }
  const third = await upgradeFrom(fx.port);
  apps.push(third.socket);
  t.match(third.head(), /^HTTP\/1\.1 503 /, 'a third, past maxRequests 2: 503');
  t.match(third.head(), /x-meshcar-error: circuit_open/i, 'circuit_open');
  t.equal(fx.observer.circuitOpen, 1, 'counted as a circuit-open refusal');
  t.equal(tunnels, 2, 'the upstream got two tunnels');

  // the first tunnel's app goes: its slot is free again
  apps[0]?.destroy();
  let reopened = '';
  const until = Date.now() + 5000;
  while (!reopened.startsWith('HTTP/1.1 101 ') && Date.now() < until) {
    const again = await upgradeFrom(fx.port);
    apps.push(again.socket);
    reopened = again.head();
  }
  t.match(reopened, /^HTTP\/1\.1 101 /, 'an upgrade opens once a tunnel has closed');
  t.equal(tunnels, 3, 'and it reached the upstream');
});
