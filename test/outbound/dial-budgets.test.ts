// An upstream endpoint's failed TLS handshakes spend a budget of its address (the inbound's per
// caller, src/tls-failures/handshake-budgets.ts): our side checks every signature of the chain an
// endpoint presents, with keys it made (test/fixtures/hostile-chain: ~80 ms of CPU per dial), and
// an upstream's only endpoint was dialled again for every request. A chain costly on its face
// spends the budget at once; a chain cut off after its certificate message (never reported)
// spends the bytes read beyond 2 KiB of each dial; a spent budget has the address not dialled
// for 1 s, then 2 s, requests answered 503 at once naming the wait. A broken endpoint of the mesh
// (another CA's SVID) spends nothing and is dialled at every request, as before: one bad pod
// behind a Service address must not hold back the good ones. Real sockets, real mTLS, both codecs.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { appIdentity, makePki, request, silent, startOutbound, startUpstream, TD, UPSTREAM_ID, waitUntil, type UpstreamOptions } from '../helpers/outbound-fixture.js';
import { connectMutualTls } from '../../src/outbound/mutual-tls.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { memoryLogger } from '../helpers/ca.js';
import { DialBudgets } from '../../src/outbound/dial-budgets.js';
import { addressKeys, AddressPenalties } from '../../src/tls-failures/handshake-budgets.js';
import type { UpstreamEndpoint } from '../../src/outbound/endpoints.js';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-chain/', import.meta.url));
const hostile = { chainPem: readFileSync(`${HOSTILE}chain10.pem`, 'utf8'), privateKeyPem: readFileSync(`${HOSTILE}leaf10.key`, 'utf8') };
// three P-521 certificates of another CA (~3.6 ms to check): a chain the outbound's handshake gate
// passes (src/tls-failures/gated-dial.ts), so that OpenSSL checks it; small2.pem's keys are refused
// by the gate on their face, before any byte is parsed
const p521 = { chainPem: readFileSync(`${HOSTILE}p521-foreign.pem`, 'utf8'), privateKeyPem: readFileSync(`${HOSTILE}p521-foreign.key`, 'utf8') };
const NO_RETRIES = { attempts: 0, budgetRatio: 0.2, budgetMinPerSecond: 10, backoffBaseMs: 25, backoffMaxMs: 1000, bufferLimitBytes: 65_536 };

/** An outbound whose upstream `payments` is one endpoint presenting `leaf`, without retries; both closed when `t` ends. */
async function outboundTo(t: { teardown(fn: () => unknown): void }, codec: 'meshcar' | 'node', pki: Awaited<ReturnType<typeof makePki>>, leaf: UpstreamOptions['leaf'], logger?: Logger) {
  const upstream = await startUpstream(pki, { leaf });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], retries: NO_RETRIES }], { codec, ...(logger ? { logger } : {}) });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  return { upstream, fx };
}

/** Requests until the upstream's dials reach `dials` (bounded by `withinMs`): how long that took. */
async function untilDialled(port: number, upstream: { connections: number }, dials: number, withinMs: number): Promise<number> {
  const startedAt = performance.now();
  while (upstream.connections < dials && performance.now() - startedAt < withinMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await request(port);
  }
  return performance.now() - startedAt;
}

/**
 * A TLS server presenting `chain` behind a relay that passes the server's records up to and
 * with its certificate message (the first record over 1 KB) and then closes (or, `stall`, sends
 * nothing more): the outbound checks the chain, and its handshake fails without a chain reported.
 */
async function cutAfterChain(t: { teardown(fn: () => unknown): void }, chain: { chainPem: string; privateKeyPem: string }, stall = false): Promise<{ port: number; connections: number; sent: number }> {
  const inner = tls.createServer({ cert: chain.chainPem, key: chain.privateKeyPem, ALPNProtocols: ['h2'] }, (socket) => socket.destroy());
  inner.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => inner.listen(0, '127.0.0.1', resolve));
  const innerPort = (inner.address() as net.AddressInfo).port;
  const state = { port: 0, connections: 0, sent: 0 };
  const relay = net.createServer((client) => {
    state.connections++;
    const server = net.connect(innerPort, '127.0.0.1');
    client.on('error', () => {});
    server.on('error', () => {});
    client.on('data', (data) => server.write(data));
    client.on('close', () => server.destroy());
    let pending = Buffer.alloc(0);
    let chainSent = false;
    server.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= 5 && !client.destroyed) {
        const length = pending.readUInt16BE(3);
        if (pending.length < 5 + length) break;
        if (chainSent) {
          // cut (a FIN), or held: nothing more comes until the dial gives up
          if (!stall) client.end();
          server.destroy();
          return;
        }
        client.write(pending.subarray(0, 5 + length));
        state.sent += 5 + length;
        chainSent = length > 1_000;
        pending = pending.subarray(5 + length);
      }
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  state.port = (relay.address() as net.AddressInfo).port;
  t.teardown(async () => {
    await new Promise((resolve) => relay.close(resolve));
    await new Promise((resolve) => inner.close(resolve));
  });
  return state;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an endpoint presenting a chain costly on its face is not dialled for 1 s, then 2 s`, async (t) => {
    const pki = await makePki(TD);
    const lines: Array<Record<string, unknown>> = [];
    const { upstream, fx } = await outboundTo(t, codec, pki, hostile as Awaited<ReturnType<typeof pki.issue>>, memoryLogger(lines, 'warn'));
    const first = await request(fx.port);
    const failedAt = performance.now();
    t.equal(first.status, 502, 'the first request: 502 (the chain is refused)');
    t.match(first.text, /"error":"upstream_identity_mismatch"/);
    const next = [];
    for (let i = 0; i < 10; i++) next.push(await request(fx.port));
    t.equal(upstream.connections, 1, 'ten more requests right after: no new dial');
    t.ok(
      next.every((r) => r.status === 503 && /"error":"upstream_unavailable".*127\.0\.0\.1:\d+ is not dialled for 1 s more: its failed TLS handshakes cost more than allowed/.test(r.text)),
      `each answered 503 at once, saying why and for how long (${next[0]?.text.slice(0, 220)})`,
    );
    t.equal(next[0]?.headers['retry-after'], '1', 'with Retry-After');
    t.ok(
      lines.some((l) => l.msg === 'upstream endpoint not dialled for 1 s: a failed TLS handshake whose certificates were costly to check, or could not be seen after the server could send them'),
      'logged as a warning',
    );

    await untilDialled(fx.port, upstream, 2, 5_000);
    const firstWait = performance.now() - failedAt;
    t.equal(upstream.connections, 2, `dialled again (${Math.round(firstWait)} ms after)`);
    t.ok(firstWait >= 950 && firstWait < 2_500, 'after about a second');
    const againAt = performance.now();
    await untilDialled(fx.port, upstream, 3, 6_000);
    const secondWait = performance.now() - againAt;
    t.equal(upstream.connections, 3, `and again after the next wait (${Math.round(secondWait)} ms)`);
    t.ok(secondWait >= 1_900 && secondWait < 3_500, 'which was about two seconds');
  });

  t.test(`${codec} codec: a chain cut off after its certificate message is costly, however small`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await cutAfterChain(t, p521);
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], retries: NO_RETRIES }], { codec });
    t.teardown(() => fx.close());
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await request(fx.port));
    // ~2 KB of certificates (~3.6 ms to check), about the 2 KiB a failed dial reads for free
    t.equal(upstream.connections, 1, '20 requests, 1 dial: cut after its certificates, never reported');
    t.ok(
      answers.slice(1).every((r) => r.status === 503 && /is not dialled for 1 s more: its failed TLS handshakes cost more than allowed/.test(r.text)),
      `the others answered 503 naming the wait (${answers.at(-1)?.text.slice(0, 200)})`,
    );
  });

  t.test(`${codec} codec: an endpoint of another CA whose certificates come with more bytes than they explain is held`, async (t) => {
    const pki = await makePki(TD);
    const foreign = await makePki('other.test');
    const leaf = await foreign.issue(`spiffe://${TD}/svc/payments`);
    const unlinked = ['ec-secp521r1', 'ec-sect571r1', 'ec-secp521r1'].map((name) => readFileSync(`${HOSTILE}${name}.pem`, 'utf8')).join('');
    const { upstream: stranger, fx } = await outboundTo(t, codec, pki, { ...leaf, chainPem: leaf.chainPem + unlinked });
    for (let i = 0; i < 10; i++) await request(fx.port);
    t.equal(stranger.connections, 1, '10 requests, 1 dial: three certificates after its chain that Node links to nothing (OpenSSL parsed them)');
  });

  t.test(`${codec} codec: a broken endpoint of the mesh (another CA's SVID) is dialled at every request`, async (t) => {
    const pki = await makePki(TD);
    const foreign = await makePki('other.test');
    const { upstream: stranger, fx } = await outboundTo(t, codec, pki, await foreign.issue(`spiffe://${TD}/svc/payments`));
    const answers = [];
    for (let i = 0; i < 80; i++) answers.push(await request(fx.port));
    // each reads ~1.5 KB: charged from the first byte, 80 of them spend the budget
    t.equal(stranger.connections, 80, '80 requests, 80 dials: its handshakes spend nothing');
    t.ok(
      answers.every((r) => r.status === 502 && /"error":"upstream_identity_mismatch"/.test(r.text)),
      'each answered with its own dial',
    );
  });

  t.test(`${codec} codec: a broken endpoint of an RSA mesh (2.6 KB read per dial) is dialled at every request`, async (t) => {
    const pki = await makePki(TD);
    const rsa = { chainPem: readFileSync(`${HOSTILE}rsa-foreign.pem`, 'utf8'), privateKeyPem: readFileSync(`${HOSTILE}rsa-foreign.key`, 'utf8') };
    const { upstream: stranger, fx } = await outboundTo(t, codec, pki, rsa as Awaited<ReturnType<typeof pki.issue>>);
    for (let i = 0; i < 160; i++) await request(fx.port);
    // charged the bytes beyond 2 KiB (~0.6 KiB a dial), 160 of them would spend the whole budget
    t.equal(stranger.connections, 160, '160 requests, 160 dials: its certificates were reported and judged, nothing spent');
  });
}

t.test('a burst of dials to an address whose dials never failed is dialled whole; once one failed, dials in progress are bounded', async (t) => {
  const budgets = new DialBudgets(silent);
  const endpoint = { address: '127.0.0.9', port: 443, key: '127.0.0.9:443' } as UpstreamEndpoint;
  const tickets = Array.from({ length: 40 }, () => budgets.begin(endpoint));
  t.ok(
    tickets.every((ticket) => !(ticket instanceof Error)),
    '40 dials at once (40 WebSocket tunnels): none refused',
  );

  // the same budget, as the outbound keeps it, after one failure charged 2 KiB
  let now = 0;
  const penalties = new AddressPenalties(() => now, false);
  const keys = addressKeys('127.0.0.9');
  t.ok(Array.from({ length: 40 }, () => penalties.reserve(keys)).every(Boolean), 'a full budget: 40 in progress');
  for (let i = 0; i < 40; i++) penalties.release(keys);
  t.equal(penalties.failedHandshake(keys, 4 * 1024, false), undefined, 'one failure charged 2 KiB: the budget holds');
  let admitted = 0;
  while (admitted < 100 && penalties.reserve(keys)) admitted++;
  t.equal(admitted, 16, 'then 16 in progress at most (4 KiB each of the 62 KiB left)');
  now += 2_000;
  for (let i = 0; i < admitted; i++) penalties.release(keys);
  t.ok(Array.from({ length: 40 }, () => penalties.reserve(keys)).every(Boolean), 'refilled to full (2 s later): unbounded again');
});

t.test('a dial stalled after the server sent its certificates holds further dials of the endpoint back', async (t) => {
  const pki = await makePki(TD);
  const upstream = await cutAfterChain(t, p521, true);
  const budgets = new DialBudgets(silent);
  const identity = await appIdentity(pki);
  const endpoint = { address: '127.0.0.1', port: upstream.port, key: `127.0.0.1:${upstream.port}` } as UpstreamEndpoint;
  const options = { identity, checkServerIdentity: verifyServerSpiffeId(UPSTREAM_ID), alpn: ['h2'], timeoutMs: 4_000, budgets };
  const startedAt = performance.now();
  const first = connectMutualTls(endpoint, options).then(
    () => 'connected',
    (err: Error) => err.message,
  );
  await waitUntil(() => upstream.sent > 1_000, 'the relay sent the certificates');
  await waitUntil(() => performance.now() - startedAt > 1_050, 'a second since the dial began', 3_000);
  const second = await connectMutualTls(endpoint, options).catch((err: Error) => err.message);
  t.match(second, /is not dialled now: a dial in progress there read its certificates \d+ ms ago and has not finished its handshake/, `a second dial once the first stalled a second after its certificates: refused at once (${second})`);
  t.equal(upstream.connections, 1, 'not dialled');
  t.match(await first, /did not finish the TLS handshake within 4000 ms/, 'the first ends at the connect timeout');
});
