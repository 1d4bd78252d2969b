// The handshake gate under the outbound's dials (src/tls-failures/gated-dial.ts): an upstream's
// certificate message is judged from its DER before OpenSSL parses it, as a caller's is on the
// inbound. A certificate whose EC key has explicit parameters over a crafted field
// (fixtures/hostile-chain/slow-ec.pem) costs OpenSSL ~250 ms to decode: an upstream presenting
// its mesh SVID followed by copies of it held our whole process that long per copy, every
// request of the sidecar waiting. Now refused with nothing parsed, over TLS 1.3 (the server's
// flight opened with its handshake secret), TLS 1.2 (in the clear) and after a
// HelloRetryRequest; the endpoint's whole dial budget spent. Upstreams of the mesh are served
// through the gate over each TLS 1.3 suite and TLS 1.2, their records cut into small writes.
// Real sockets, real TLS, certificates of the test CA.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { appIdentity, makePki, request, silent, startOutbound, TD, UPSTREAM_ID, waitUntil } from '../helpers/outbound-fixture.js';
import { connectMutualTls } from '../../src/outbound/mutual-tls.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { DialBudgets } from '../../src/outbound/dial-budgets.js';
import type { UpstreamEndpoint } from '../../src/outbound/endpoints.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { onRecords } from '../helpers/tls-records.js';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-chain/', import.meta.url));
const SLOW_EC = readFileSync(`${HOSTILE}slow-ec.pem`, 'utf8');
const NO_RETRIES = { attempts: 0, budgetRatio: 0.2, budgetMinPerSecond: 10, backoffBaseMs: 25, backoffMaxMs: 1000, bufferLimitBytes: 65_536 };

interface Upstream {
  readonly port: number;
  connections: number;
  handshakes: number;
}

/** A TLS record of `type` carrying `payload`. */
const record = (type: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([type, 3, 3, payload.length >> 8, payload.length & 0xff]), payload]);

/** Rewrites a server's records on their way to the dialler: the records to send for its `index`th. */
type RecordRewrite = (rec: Buffer, index: number) => Buffer[];

/**
 * A TLS server presenting `chainPem` (its own OpenSSL parses it once, here), asking for a client
 * certificate of the test CA; `chop` relays its bytes to the dialler `chop` bytes a write, each
 * on its own turn of the loop; `rewrite` relays its records rewritten.
 */
async function upstreamPresenting(t: { teardown(fn: () => unknown): void }, pki: Awaited<ReturnType<typeof makePki>>, chainPem: string, privateKeyPem: string, options: tls.TlsOptions = {}, chop = 0, rewrite?: RecordRewrite): Promise<Upstream> {
  const state = { port: 0, connections: 0, handshakes: 0 };
  const server = tls.createServer({ cert: chainPem, key: privateKeyPem, ca: pki.bundlePem, ...MTLS_SERVER_OPTIONS, ALPNProtocols: ['h2'], ...options }, (socket) => {
    state.handshakes++;
    socket.on('error', () => {});
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const tlsPort = (server.address() as net.AddressInfo).port;
  const front = net.createServer((client) => {
    state.connections++;
    const inner = net.connect({ host: '127.0.0.1', port: tlsPort, noDelay: true });
    client.on('error', () => inner.destroy());
    inner.on('error', () => client.destroy());
    client.on('close', () => inner.destroy());
    inner.on('close', () => client.destroy());
    client.pipe(inner);
    if (rewrite !== undefined) {
      onRecords(inner, (whole, index) => {
        for (const out of rewrite(whole, index)) client.write(out);
      });
      return;
    }
    if (chop === 0) return void inner.pipe(client);
    let queue = Promise.resolve();
    inner.on('data', (chunk: Buffer) => {
      for (let at = 0; at < chunk.length; at += chop) {
        const piece = chunk.subarray(at, at + chop);
        queue = queue.then(() => new Promise<void>((done) => setImmediate(() => (client.destroyed ? done() : client.write(piece, () => done())))));
      }
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  state.port = (front.address() as net.AddressInfo).port;
  t.teardown(() => {
    front.close();
    server.close();
  });
  return state;
}

const endpointOf = (port: number) => ({ address: '127.0.0.1', port, key: `127.0.0.1:${port}` }) as UpstreamEndpoint;

t.test("an upstream's certificate costly to decode is refused before OpenSSL parses it", async (t) => {
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  // the third: the server's first choice of group is one our first hello has no key share for,
  // so it asks again (a HelloRetryRequest, and a ChangeCipherSpec before its ServerHello)
  const cases = [
    ['TLS 1.3', { maxVersion: 'TLSv1.3' }],
    ['TLS 1.2', { maxVersion: 'TLSv1.2' }],
    ['TLS 1.3 after a HelloRetryRequest', { maxVersion: 'TLSv1.3', ecdhCurve: 'P-384' }],
  ] as const;
  for (const [how, options] of cases) {
    const upstream = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, options);
    const budgets = new DialBudgets(silent);
    const endpoint = endpointOf(upstream.port);
    const dial = { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets };
    const before = process.cpuUsage();
    const outcome = await connectMutualTls(endpoint, dial).then(
      (socket) => (socket.destroy(), 'connected'),
      (err: Error & { tlsReason?: string }) => `${err.message} (${err.tlsReason})`,
    );
    const cpu = process.cpuUsage(before);
    const ms = (cpu.user + cpu.system) / 1000;
    t.match(outcome, /presented certificates refused before they were parsed: a certificate with an EC key with explicit parameters.* \(invalid_certificate\)$/, `${how}: refused, saying why (${outcome})`);
    t.ok(ms < 100, `${how}: the dial cost ${ms.toFixed(1)} ms of CPU in all, the server's side included (OpenSSL's decode of the key alone: ~250 ms)`);
    const again = await connectMutualTls(endpoint, dial).catch((err: Error) => err.message);
    t.match(again, /is not dialled for 1 s more: its failed TLS handshakes cost more than allowed/, `${how}: the endpoint's whole budget spent: not dialled again at once`);
    t.equal(upstream.connections, 1, `${how}: one connection`);
  }
});

t.test('upstreams of the mesh are served through the gate: each TLS 1.3 suite, TLS 1.2, records in 7-byte writes', async (t) => {
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  const cases = [
    ['TLS_AES_128_GCM_SHA256', { ciphers: 'TLS_AES_128_GCM_SHA256' }, 0],
    ['TLS_AES_256_GCM_SHA384', { ciphers: 'TLS_AES_256_GCM_SHA384' }, 0],
    ['TLS_CHACHA20_POLY1305_SHA256', { ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }, 0],
    ['TLS 1.2', { maxVersion: 'TLSv1.2' }, 0],
    ['TLS 1.3 in 7-byte writes', {}, 7],
  ] as const;
  for (const [how, options, chop] of cases) {
    const upstream = await upstreamPresenting(t, pki, leaf.chainPem, leaf.privateKeyPem, options, chop);
    const dial = { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) };
    const socket = await connectMutualTls(endpointOf(upstream.port), dial);
    t.equal(socket.alpnProtocol, 'h2', `${how}: connected (${socket.getProtocol()}, ${socket.getCipher().name})`);
    if (how.startsWith('TLS_')) t.equal(socket.getCipher().standardName, how, `${how}: over that suite`);
    t.equal(socket.remotePort, upstream.port, `${how}: the TLS socket knows its TCP socket's address`);
    await waitUntil(() => upstream.handshakes === 1, 'the server finished its handshake');
    socket.destroy();
    t.pass(`${how}: the server finished its handshake too (our certificate, our Finished)`);
  }
});

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a request to an upstream presenting the crafted certificate is answered 502 at once, the failure counted`, async (t) => {
    const pki = await makePki(TD);
    const leaf = await pki.issue(UPSTREAM_ID);
    const upstream = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], retries: NO_RETRIES }], { codec });
    t.teardown(() => fx.close());
    const before = process.cpuUsage();
    const answer = await request(fx.port);
    const cpu = process.cpuUsage(before);
    const ms = (cpu.user + cpu.system) / 1000;
    t.equal(answer.status, 502, 'answered 502');
    t.match(answer.text, /"error":"upstream_identity_mismatch".*presented certificates refused before they were parsed: a certificate with an EC key with explicit parameters/, `naming the refusal (${answer.text.slice(0, 200)})`);
    t.ok(ms < 150, `the request cost ${ms.toFixed(1)} ms of CPU in all, the upstream's side included (OpenSSL's decode of the crafted key: ~250 ms)`);
    t.ok(
      fx.observer.tlsFailures.some((f) => f.direction === 'outbound' && f.reason === 'invalid_certificate'),
      'an outbound TLS failure, invalid_certificate',
    );
  });
}

t.test("a ServerHello split over records is read whole: the server's version is not taken from one record", async (t) => {
  // the gate once read a client's version from the server's first record alone: a ServerHello
  // split 4 + rest read as TLS 1.2, and the TLS 1.3 server's own ChangeCipherSpec then opened the
  // gate, the crafted certificate parsed (1.1 s of CPU a dial) and the dial served
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  for (const at of [4, 20]) {
    const split: RecordRewrite = (rec, index) => (index === 0 ? [record(22, rec.subarray(5, 5 + at)), record(22, rec.subarray(5 + at))] : [rec]);
    const upstream = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, {}, 0, split);
    const dial = { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) };
    const before = process.cpuUsage();
    const outcome = await connectMutualTls(endpointOf(upstream.port), dial).then(
      (socket) => (socket.destroy(), 'connected'),
      (err: Error) => err.message,
    );
    const cpu = process.cpuUsage(before);
    const ms = (cpu.user + cpu.system) / 1000;
    t.match(outcome, /presented certificates refused before they were parsed: a certificate with an EC key with explicit parameters/, `split at ${at}: refused (${outcome})`);
    t.ok(ms < 100, `split at ${at}: the dial cost ${ms.toFixed(1)} ms of CPU in all`);
  }
  // and a mesh upstream whose ServerHello comes split is served
  const upstream = await upstreamPresenting(t, pki, leaf.chainPem, leaf.privateKeyPem, {}, 0, (rec, index) => (index === 0 ? [record(22, rec.subarray(5, 9)), record(22, rec.subarray(9))] : [rec]));
  const socket = await connectMutualTls(endpointOf(upstream.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) });
  t.equal(socket.getProtocol(), 'TLSv1.3', 'a mesh upstream with its ServerHello split is served');
  socket.destroy();
});

t.test('a protected record before the ServerHello is refused at once (no server sends one)', async (t) => {
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  const early: RecordRewrite = (rec, index) => (index === 0 ? [record(23, Buffer.alloc(16_000, 1)), rec] : [rec]);
  const upstream = await upstreamPresenting(t, pki, leaf.chainPem, leaf.privateKeyPem, {}, 0, early);
  const outcome = await connectMutualTls(endpointOf(upstream.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) }).then(
    (socket) => (socket.destroy(), 'connected'),
    (err: Error & { tlsReason?: string }) => `${err.message} (${err.tlsReason})`,
  );
  t.match(outcome, /its TLS handshake was refused before its certificates were read: a protected record before its ServerHello \(protocol\)$/, `refused (${outcome})`);
});

t.test('bytes that are no TLS record after the ServerHello are refused before OpenSSL reads them', async (t) => {
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  // a record of type 24 (heartbeat, which TLS 1.3 has not) between the ServerHello and the rest
  const odd: RecordRewrite = (rec, index) => (index === 0 ? [rec, Buffer.concat([Buffer.from([24, 3, 3, 0, 1]), Buffer.from([0])])] : [rec]);
  const upstream = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, {}, 0, odd);
  const outcome = await connectMutualTls(endpointOf(upstream.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) }).then(
    (socket) => (socket.destroy(), 'connected'),
    (err: Error & { tlsReason?: string }) => `${err.message} (${err.tlsReason})`,
  );
  t.match(outcome, /refused before its certificates were read: bytes that are no TLS record \(type 24, version 3\.3\) after its first \(protocol\)$/, `refused, saying what came (${outcome})`);
});

t.test("an empty ChangeCipherSpec after a TLS 1.2 server's hello opens nothing; a TLS 1.2 session is still resumed", async (t) => {
  // OpenSSL skips a record of no bytes, of any type: an empty ChangeCipherSpec opened the gate
  // under TLS 1.2, and the crafted certificate after it was parsed (a review: 1.1 s a dial, served)
  const pki = await makePki(TD);
  const identity = await appIdentity(pki);
  const leaf = await pki.issue(UPSTREAM_ID);
  const emptyCcs: RecordRewrite = (rec, index) => (index === 0 ? [rec, record(20, Buffer.alloc(0))] : [rec]);
  const upstream = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, { maxVersion: 'TLSv1.2' }, 0, emptyCcs);
  const before = process.cpuUsage();
  const outcome = await connectMutualTls(endpointOf(upstream.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) }).then(
    (socket) => (socket.destroy(), 'connected'),
    (err: Error) => err.message,
  );
  const cpu = process.cpuUsage(before);
  const ms = (cpu.user + cpu.system) / 1000;
  t.match(outcome, /presented certificates refused before they were parsed: a certificate with an EC key with explicit parameters/, `refused (${outcome})`);
  t.ok(ms < 100, `the dial cost ${ms.toFixed(1)} ms of CPU in all`);
  // nor does an empty protected record: refused as it comes
  const emptyData: RecordRewrite = (rec, index) => (index === 0 ? [rec, record(23, Buffer.alloc(0))] : [rec]);
  const other = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, { maxVersion: 'TLSv1.2' }, 0, emptyData);
  const said = await connectMutualTls(endpointOf(other.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) }).then(
    (socket) => (socket.destroy(), 'connected'),
    (err: Error) => err.message,
  );
  t.match(said, /refused before its certificates were read: an empty protected record before its certificates$/, `an empty protected record refused (${said})`);
  // nor a Finished in the clear (it is always protected): the certificates after it are judged
  const clearFinished: RecordRewrite = (rec, index) => (index === 0 ? [rec, record(22, Buffer.concat([Buffer.from([20, 0, 0, 12]), Buffer.alloc(12, 9)]))] : [rec]);
  const third = await upstreamPresenting(t, pki, leaf.chainPem + SLOW_EC, leaf.privateKeyPem, { maxVersion: 'TLSv1.2' }, 0, clearFinished);
  const judged = await connectMutualTls(endpointOf(third.port), { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) }).then(
    (socket) => (socket.destroy(), 'connected'),
    (err: Error) => err.message,
  );
  t.match(judged, /presented certificates refused before they were parsed/, `a Finished in the clear opens nothing (${judged})`);
  // a resumed TLS 1.2 session: ServerHello, then the server's ChangeCipherSpec (no certificates)
  const mesh = await upstreamPresenting(t, pki, leaf.chainPem, leaf.privateKeyPem, { maxVersion: 'TLSv1.2' });
  let ticket: Buffer | undefined;
  const options = { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 5_000, budgets: new DialBudgets(silent) };
  const first = await connectMutualTls(endpointOf(mesh.port), { ...options, onTicket: (session) => (ticket = session) });
  await waitUntil(() => ticket !== undefined, 'a TLS 1.2 session to resume');
  first.destroy();
  const second = await connectMutualTls(endpointOf(mesh.port), { ...options, session: ticket });
  t.ok(second.isSessionReused(), `resumed over TLS 1.2 (${second.getProtocol()})`);
  second.destroy();
});
