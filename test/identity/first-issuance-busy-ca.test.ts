// A sidecar's first SVID from a CA that answers "not now": its own rate limit (429 with
// Retry-After, a fleet starting together on one host or behind one NAT address), or a proxy in
// front of it that is not ready (502/503, an HTML page). Each is retried within the start-up
// wait, Retry-After honoured, one warning per retry naming the answer; a refusal of the request
// itself (401 token_used) stays final, said at once, and so does a 500 (the CA's own failure).
// The CA is the real one (rate limit) or a real HTTPS server with the CA's SPIFFE ID and a
// certificate from our CA that signs through our authority once it is "ready".

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callCa, memoryLogger, startTestCa } from '../helpers/ca.js';
import { caToken, openAuthority } from '../../src/ca/commands.js';
import { parseAndVerifyCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

async function tokenFile(t: Tap.Test, caDir: string, singleUse = false): Promise<{ work: string; tokenPath: string }> {
  const work = await mkdtemp(join(tmpdir(), 'meshcar-busy-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${await caToken(caDir, 'orders', 600_000, singleUse)}\n`);
  return { work, tokenPath };
}

const retries = (lines: Array<Record<string, unknown>>) => lines.filter((l) => /first SVID request failed, retrying/.test(String(l.msg)));

t.test("the CA's own rate limit (429, Retry-After) at first contact is waited out, not final", async (t) => {
  // one request a second, none banked: the test's request empties the bucket for 127.0.0.1
  const ca = await startTestCa({ rateLimit: { perSecond: 1, burst: 1 } });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const { work, tokenPath } = await tokenFile(t, ca.dir);
  const spent = await callCa(ca.server.url, { path: '/v1/bundle', ca: bundlePem });
  t.equal(spent.status, 200, 'the bucket is spent');
  const lines: Array<Record<string, unknown>> = [];
  const failed: unknown[] = [];
  const started = Date.now();
  const running = await obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'identity'), ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, logger: memoryLogger(lines, 'debug'), onFirstRequestFailed: (err) => failed.push(err) });
  t.teardown(() => running.stop());
  t.equal(running.identity.current().spiffeId, ORDERS, 'the SVID came after the wait');
  t.ok(Date.now() - started < 5000, `within the Retry-After and a little (${Date.now() - started} ms)`);
  t.ok(retries(lines).length >= 1 && retries(lines).every((l) => /refused \(429 rate_limited\)/.test(String(l.msg))), 'each retry is one line naming the 429');
  // a jittered step (at least 10 ms) on top of it: sidecars turned away in the same second come back spread
  t.ok(retries(lines).every((l) => Number(l.retryInMs) >= 1010 && Number(l.retryInMs) <= 1250), `Retry-After's second is waited, plus a jittered step (${retries(lines).map((l) => l.retryInMs).join(', ')} ms)`);
  t.equal(failed.length, retries(lines).length, '/identity counted each failed request');
});

/** An HTTPS server with the CA's SPIFFE ID (a certificate from our CA): `answer` decides, or it signs through our authority. */
async function proxiedCa(t: Tap.Test, answer: (n: number) => { status: number; body: string } | undefined): Promise<{ url: string; caDir: string; requests: () => number }> {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const authority = await openAuthority(ca.dir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const keys = await generateWorkloadKey();
  const own = await authority.issue(caSpiffeId(TD), createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }), undefined, ['127.0.0.1']);
  let count = 0;
  const server = https.createServer({ key: keys.privateKeyPem, cert: own.chain }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const canned = answer(++count);
      if (canned) return void res.writeHead(canned.status, { 'content-type': 'text/html' }).end(canned.body);
      void (async () => {
        const csr = await parseAndVerifyCsr((JSON.parse(Buffer.concat(chunks).toString()) as { csr: string }).csr);
        const { serial: _serial, ...issued } = await authority.issue(ORDERS, csr.spki);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issued));
      })();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caDir: ca.dir, requests: () => count };
}

const PAGE = '<html><head><title>503 Service Temporarily Unavailable</title></head>\n<body><h1>503</h1></body></html>';

t.test('a proxy answering 502/503 HTML before the CA is ready: retried, then the SVID', async (t) => {
  const fake = await proxiedCa(t, (n) => (n === 1 ? { status: 502, body: PAGE } : n === 2 ? { status: 503, body: PAGE } : undefined));
  const { work, tokenPath } = await tokenFile(t, fake.caDir);
  const lines: Array<Record<string, unknown>> = [];
  const running = await obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'identity'), ca: { url: fake.url, bundlePath: join(fake.caDir, 'bundle.pem'), tokenPath }, logger: memoryLogger(lines) });
  t.teardown(() => running.stop());
  t.equal(running.identity.current().spiffeId, ORDERS, 'the SVID came on the third request');
  t.same(retries(lines).map((l) => /refused \((\d+) http_error\)/.exec(String(l.msg))?.[1]), ['502', '503'], 'one warning per retry, naming the status');
});

t.test('a proxy answering 503 for good: retried at most a second apart, then the start fails with the answer', async (t) => {
  const fake = await proxiedCa(t, () => ({ status: 503, body: PAGE }));
  const { work, tokenPath } = await tokenFile(t, fake.caDir);
  const lines: Array<Record<string, unknown>> = [];
  const started = Date.now();
  await t.rejects(obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'identity'), ca: { url: fake.url, bundlePath: join(fake.caDir, 'bundle.pem'), tokenPath }, logger: memoryLogger(lines), startupTimeoutMs: 2000 }), { code: 'ca_refused', message: /refused \(503 http_error\): <html>/ });
  const took = Date.now() - started;
  t.ok(took < 4000, `ends with the start-up wait (${took} ms)`);
  t.ok(fake.requests() >= 2 && fake.requests() <= 20, `${fake.requests()} requests: retried, no tight loop`);
});

t.test("a 500 stays final (the CA's own failure, after a single-use token may be spent): said at once", async (t) => {
  const fake = await proxiedCa(t, () => ({ status: 500, body: '{"error":"ca_missing","message":"the CA\'s issuer expired at ..."}' }));
  const { work, tokenPath } = await tokenFile(t, fake.caDir);
  const lines: Array<Record<string, unknown>> = [];
  await t.rejects(obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'identity'), ca: { url: fake.url, bundlePath: join(fake.caDir, 'bundle.pem'), tokenPath }, logger: memoryLogger(lines) }), { code: 'ca_refused', message: /refused \(500 ca_missing\): the CA's issuer expired/ });
  t.equal(fake.requests(), 1, 'one request, not retried into a token_used');
  t.same(retries(lines), [], 'no retries');
});

t.test('a refusal of the request itself (401 token_used) stays final: said at once, not retried', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const { work, tokenPath } = await tokenFile(t, ca.dir, true);
  const once1 = await obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'first'), ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, logger: memoryLogger([]) });
  once1.stop();
  const lines: Array<Record<string, unknown>> = [];
  const started = Date.now();
  await t.rejects(obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir: join(work, 'second'), ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, logger: memoryLogger(lines) }), { code: 'ca_refused', message: /401 token_used/ });
  t.ok(Date.now() - started < 2000, 'at once');
  t.same(retries(lines), [], 'no retries');
});
