// Renewal while the CA is down: the current SVID keeps serving, retries back off with growing
// gaps (jitter pinned so the gaps are measurable), and renewal succeeds once the CA is back.

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { startTcpGate } from '../helpers/tcp-gate.js';
import { makePki } from '../helpers/pki.js';
import { caServe, caToken } from '../../src/ca/commands.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { validateSvid, type Svid } from '../../src/identity/svid.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { backoffDelayMs, Renewal, retryDeadline } from '../../src/identity/renewal.js';
import { isMeshcarError, MeshcarError } from '../../src/errors.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const logger = pino({ level: 'silent' });

t.test('backoffDelayMs: full jitter under a doubling ceiling, capped', async (t) => {
  const policy = { baseMs: 500, capMs: 30_000 };
  t.equal(backoffDelayMs(0, policy, () => 1), 500);
  t.equal(backoffDelayMs(3, policy, () => 1), 4000);
  t.equal(backoffDelayMs(20, policy, () => 1), 30_000);
  t.equal(backoffDelayMs(2, policy, () => 0.5), 1000);
  t.ok(backoffDelayMs(2, policy, () => 0) > 0, 'never zero: no hot loop');
  const samples = Array.from({ length: 200 }, () => backoffDelayMs(4, policy));
  t.ok(samples.every((d) => d >= 0 && d <= 8000), 'inside [0, base·2^attempt]');
  t.ok(new Set(samples).size > 50, 'and jittered');
});

t.test('a retry is never scheduled later than shortly before expiry', async (t) => {
  const pki = await makePki('mesh.local');
  // 10 s of life: long enough that a loaded machine cannot let it lapse before the first attempt
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(ORDERS, { lifetimeMs: 10_000 }), ORDERS), logger);
  const failed = once(identity, 'renewal');
  const renewal = new Renewal({
    identity,
    obtain: async () => Promise.reject(new Error('CA down')),
    window: { from: 0, to: 0 },
    backoff: { baseMs: 60_000, capMs: 60_000 }, // a minute of backoff against 10 s of life
    random: () => 1,
    logger,
  });
  renewal.start();
  t.teardown(() => renewal.stop());
  await failed;
  const next = renewal.nextRenewalAt?.getTime() ?? Infinity;
  t.ok(next <= retryDeadline(identity.current()), 'clamped to the deadline');
  t.ok(next < identity.current().notAfter.getTime(), 'before expiry');
});

t.test("past expiry, a CA's Retry-After is honoured up to the backoff's cap", async (t) => {
  const pki = await makePki('mesh.local');
  // an SVID that ended 8 s ago, accepted as of a moment it was valid: no wait for it to lapse,
  // and no race between a 1 s lifetime and a loaded machine (it once lapsed before validation)
  const issuedAt = new Date(Date.now() - 10_000);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(ORDERS, { now: issuedAt, lifetimeMs: 2000 }), ORDERS, new Date(issuedAt.getTime() + 500)), logger);
  t.ok(identity.current().notAfter.getTime() < Date.now(), 'the SVID has already expired');
  const failed = once(identity, 'renewal');
  const renewal = new Renewal({
    identity,
    obtain: async () => Promise.reject(new MeshcarError('rate_limited', 'come back tomorrow', { retryAfterSeconds: 86_400 })),
    window: { from: 0, to: 0 },
    backoff: { baseMs: 500, capMs: 30_000 },
    random: () => 1,
    logger,
  });
  renewal.start();
  t.teardown(() => renewal.stop());
  await failed;
  const wait = (renewal.nextRenewalAt?.getTime() ?? Infinity) - Date.now();
  // the 30 s cap, and the jittered step on top (pinned: attempt 0's full 500 ms)
  t.ok(wait > 29_000 && wait <= 30_500, `the next attempt in ${Math.round(wait / 1000)} s: Retry-After honoured up to the 30 s cap, not a day`);
});

t.test("sidecars a CA turned away with one Retry-After come back spread, not at once", async (t) => {
  // the CA's rate limiter says when its next token comes: the same moment to every sidecar it
  // turned away; the retries all came then (one got the token, the rest another 429)
  const pki = await makePki('mesh.local');
  const next: number[] = [];
  for (let i = 0; i < 6; i++) {
    const identity = new WorkloadIdentity(validateSvid(await pki.issue(ORDERS, { lifetimeMs: 3_600_000 }), ORDERS), logger);
    const failed = once(identity, 'renewal');
    const renewal = new Renewal({
      identity,
      obtain: async () => Promise.reject(new MeshcarError('rate_limited', 'too many requests', { retryAfterSeconds: 20 })),
      window: { from: 0, to: 0 },
      backoff: { baseMs: 500, capMs: 30_000 },
      random: () => (i + 1) / 6, // each sidecar's own draw, pinned
      logger,
    });
    const asked = Date.now();
    renewal.start();
    t.teardown(() => renewal.stop());
    await failed;
    next.push((renewal.nextRenewalAt?.getTime() ?? Infinity) - asked);
  }
  t.ok(next.every((wait) => wait >= 20_000 && wait <= 21_000), `each waits out the Retry-After (${next.join(', ')} ms)`);
  t.ok(Math.max(...next) - Math.min(...next) >= 300, 'and they are spread over the jittered step');
});

t.test('CA down: keep serving, back off, renew when it returns', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  // the client reaches the CA through a gate the test holds: the CA can go away and come back
  // on a port of its own, and no port is released for another test to take
  const gate = await startTcpGate();
  t.teardown(() => gate.stop());
  gate.open(ca.server.port);
  const client = new CaClient({ url: `https://127.0.0.1:${gate.port}`, trustDomain: 'mesh.local', bundlePem, logger, timeoutMs: 2000 });
  const token = await caToken(ca.dir, 'orders', 600_000, false);
  const first = await client.sign({ spiffeId: ORDERS, auth: { token }, ttlMs: 8000 });

  // the CA goes away: connections to it are dropped
  gate.close({ cut: true });
  await ca.server.close();

  const identity = new WorkloadIdentity(first, logger);
  const server = https.createServer({ ...identity.tls().options, ...MTLS_SERVER_OPTIONS }, (_req, res) => res.end('ok'));
  identity.attachServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  const frontend = validateSvid(await issueFrom(ca.dir, 'frontend'), 'spiffe://mesh.local/svc/frontend');
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, agent: false, ca: bundlePem, key: frontend.privateKeyPem, cert: frontend.chainPem, checkServerIdentity: verifyServerSpiffeId(ORDERS) },
        (res) => {
          const serial = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '';
          res.resume().on('end', () => resolve(serial));
        },
      );
      req.on('error', reject);
      req.end();
    });

  const lines: Array<Record<string, unknown>> = [];
  const events: Array<RenewalEvent & { at: number }> = [];
  identity.on('renewal', (e) => events.push({ ...e, at: Date.now() }));
  const renewal = new Renewal({
    identity,
    obtain: (current: Svid) => client.sign({ spiffeId: ORDERS, auth: { svid: current }, ttlMs: 8000 }),
    // leaves are backdated 10% of their lifetime: 20% means 0.8 s from issuance
    window: { from: 0.2, to: 0.2 },
    backoff: { baseMs: 100, capMs: 3000 },
    random: () => 1, // pin the jitter at its ceiling: gaps 100, 200, 400, 800 ms
    logger: memoryLogger(lines, 'warn'),
  });
  renewal.start();
  t.teardown(() => {
    renewal.stop();
    server.close();
  });

  while (events.length < 5) await once(identity, 'renewal');
  t.ok(events.every((e) => e.result === 'failure'), 'every attempt failed');
  t.ok(events.every((e) => isMeshcarError(e.error) && e.error.code === 'ca_unreachable'), 'as ca_unreachable');
  t.equal(renewal.consecutiveFailures, 5);
  // the planned waits are exact (jitter pinned); the measured gaps can only be longer, by load
  t.same(lines.filter((l) => String(l.msg).startsWith('SVID renewal failed')).map((l) => l.retryInMs), [100, 200, 400, 800, 1600], 'each retry waits twice as long as the one before');
  const gaps = events.slice(1).map((e, i) => e.at - (events[i] as { at: number }).at);
  // a timer counts from libuv's loop clock, which lags Date.now() by however long the turn
  // that armed it had run: on a loaded machine that is a few ms (94 ms for 100 seen in CI)
  t.ok(gaps.every((gap, i) => gap >= 100 * 2 ** i - 25), `and waited about that long (${gaps.join(', ')} ms)`);
  t.equal(await servedSerial(), first.serialHex, 'still serving the current SVID');
  t.equal(identity.current().serialHex, first.serialHex);

  // the CA returns (on a port of its own, behind the same address)
  ca.server = await caServe(ca.config, logger);
  gate.open(ca.server.port);
  const [renewed] = await once(identity, 'rotated');
  t.not((renewed as Svid).serialHex, first.serialHex, 'renewed');
  t.equal(events.at(-1)?.result, 'success');
  t.equal(renewal.consecutiveFailures, 0);
  t.equal(await servedSerial(), (renewed as Svid).serialHex, 'new handshakes get the renewed SVID');
  // the next renewal is planned from the new certificate's lifetime (not from the failures)
  t.ok((renewal.nextRenewalAt?.getTime() ?? 0) >= (renewed as Svid).notBefore.getTime() + 0.2 * 8000 - 1000, 'back on the normal schedule');
});

/** Offline issuance from the CA directory (what `meshcar ca issue` does). */
async function issueFrom(dir: string, service: string) {
  const { openAuthority } = await import('../../src/ca/commands.js');
  const { generateWorkloadKey } = await import('../../src/pki/keys.js');
  const { createPublicKey } = await import('node:crypto');
  const authority = await openAuthority(dir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const keys = await generateWorkloadKey();
  const issued = await authority.issue(`spiffe://mesh.local/svc/${service}`, createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }));
  return { privateKeyPem: keys.privateKeyPem, chainPem: issued.chain, bundlePem: issued.bundle };
}

// a bundle poll that finds the leaf no longer covered asks for a renewal at every poll; while
// attempts fail, the back-off's next attempt stands: at a 1 s poll, 27 attempts were made in
// 10 s through a 28 s back-off (a trust-transitions review)
t.test('renewNow does not jump a back-off in progress; it renews at once when none is', async (t) => {
  const gate = await startTcpGate();
  t.teardown(() => gate.stop());
  const pki = await makePki('mesh.local');
  const current = validateSvid(await pki.issue(ORDERS), ORDERS);
  // a CA address that takes no connection: every attempt fails at once
  const client = new CaClient({ url: `https://127.0.0.1:${gate.port}`, trustDomain: 'mesh.local', bundlePem: pki.bundlePem, logger, timeoutMs: 2000 });
  const identity = new WorkloadIdentity(current, logger);
  const events: RenewalEvent[] = [];
  identity.on('renewal', (e) => events.push(e));
  const renewal = new Renewal({
    identity,
    obtain: (svid: Svid) => client.sign({ spiffeId: ORDERS, auth: { svid }, ttlMs: 8000 }),
    window: { from: 0.5, to: 0.5 },
    backoff: { baseMs: 60_000, capMs: 60_000 },
    random: () => 1,
    logger,
  });
  renewal.start();
  t.teardown(() => renewal.stop());
  const planned = renewal.nextRenewalAt?.getTime() ?? 0;
  t.ok(planned > Date.now() + 60_000, 'first renewal planned half-way through the hour');
  renewal.renewNow();
  while (events.length < 1) await once(identity, 'renewal');
  t.equal(events[0]?.result, 'failure', 'renewNow ran an attempt at once; it failed');
  const backoffAt = renewal.nextRenewalAt?.getTime() ?? 0;
  t.ok(backoffAt > Date.now() + 50_000, 'the next attempt is a minute away (the back-off)');
  renewal.renewNow();
  renewal.renewNow();
  t.equal(renewal.nextRenewalAt?.getTime(), backoffAt, 'renewNow left the back-off as it was');
});
