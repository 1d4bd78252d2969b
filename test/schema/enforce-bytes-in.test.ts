// A JSON body read whole for an enforcing OpenAPI check and refused (400 schema_violation, 413)
// was recorded with bytesIn 0, though every byte came from the caller (the README's bytesIn:
// "the body bytes from the caller"); the other sidecar, not enforcing, recorded the real count
// for the same request. Both directions now count what the check read; a body sent on is
// counted once, as it is replayed. Real sockets: an app's HTTP/1.1 call to the outbound and an
// mTLS upstream; an mTLS caller to the inbound and its app.

import t from 'tap';
import { resolve } from 'node:path';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { waitFor } from '../helpers/mesh.js';
import { loadGuard } from '../../src/schema/guard.js';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';

const SPEC = resolve('config/orders.openapi.yaml');
const HEAD = { 'content-type': 'application/json', 'idempotency-key': 'idem-0001' };
const VALID = JSON.stringify({ item: 'b'.repeat(2_000), qty: 1 });
const INVALID = JSON.stringify({ item: 'b'.repeat(2_000), qty: 'many' });

t.test('outbound enforce: a refused body and a forwarded one each record the bytes the app sent', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(() => fx.close());
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 8192, maxBuffered: 65_536 })]]));
  const refused = await request(fx.port, { method: 'POST', path: '/orders', headers: { ...HEAD, host: 'payments', 'x-request-id': 'refused' }, body: INVALID });
  t.equal(refused.status, 400);
  const sent = await request(fx.port, { method: 'POST', path: '/orders', headers: { ...HEAD, host: 'payments', 'x-request-id': 'sent' }, body: VALID });
  t.equal(sent.status, 200);
  const records = await fx.observer.waitForRequests(2);
  t.equal(records.find((r) => r.requestId === 'refused')?.bytesIn, Buffer.byteLength(INVALID), 'refused: every byte read counted');
  t.equal(records.find((r) => r.requestId === 'sent')?.bytesIn, Buffer.byteLength(VALID), 'forwarded: counted once');
});

t.test('inbound enforce: a refused body and a forwarded one each record the bytes the caller sent', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 8192 }));
  const tls = await fx.tlsOptions();
  const refused = await h1Request(fx.port, tls, { method: 'POST', path: '/orders', headers: { ...HEAD, 'x-request-id': 'refused' }, body: INVALID });
  t.equal(refused.status, 400);
  const sent = await h1Request(fx.port, tls, { method: 'POST', path: '/orders', headers: { ...HEAD, 'x-request-id': 'sent' }, body: VALID });
  t.equal(sent.status, 200);
  const records = await fx.observer.waitForRequests(2);
  t.equal(records.find((r) => r.requestId === 'refused')?.bytesIn, Buffer.byteLength(INVALID), 'refused: every byte read counted');
  t.equal(records.find((r) => r.requestId === 'sent')?.bytesIn, Buffer.byteLength(VALID), 'forwarded: counted once');
});

// the inbound counted a refusal's bytes only once the read ended: a body that stalled (408) or
// whose caller left (499) was recorded with none, where the outbound counted what it had read
t.test('inbound enforce: a body that stalls or whose caller leaves halfway records the bytes read', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 8192 }));
  fx.inbound.setTimeouts({ timeoutMs: 5000, idleTimeoutMs: 400 });
  const part = `{"item":"${'b'.repeat(500)}`;
  for (const leave of [false, true]) {
    const requestId = leave ? 'left' : 'stalled';
    const socket = tlsConnect({ ...(await fx.tlsOptions()), host: '127.0.0.1', port: fx.port, ALPNProtocols: ['http/1.1'] });
    socket.on('error', () => undefined);
    t.teardown(() => socket.destroy());
    await once(socket, 'secureConnect');
    socket.write(`POST /orders HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nidempotency-key: idem-0001\r\nx-request-id: ${requestId}\r\ncontent-length: 2000\r\n\r\n${part}`);
    await waitFor(async () => fx.inbound.inFlight === 1, 5_000, 'the request in flight');
    if (leave) socket.destroy();
    await waitFor(async () => fx.observer.requests.some((r) => r.requestId === requestId), 5_000, `the ${requestId} request recorded`);
    const record = fx.observer.requests.find((r) => r.requestId === requestId);
    t.equal(record?.bytesIn, part.length, `${requestId} (${record?.status}): the ${part.length} bytes read`);
    socket.destroy();
  }
});
