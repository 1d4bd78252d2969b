// A spent single-use join token stays spent while any CA server on the folder may still accept
// it, whatever the writer's clock says. Every spend prunes used-tokens.json by the writing
// server's clock; entries used to go the moment their token expired by that clock, so a second
// `ca serve` on the folder whose clock ran 2 h ahead dropped a 10-minute token the first had
// spent, and after a restart the first signed it again. Entries now stay PRUNE_MARGIN_MS (a
// week) past their token's end, so a server whose clock runs behind still finds them while it
// takes the token as valid. Real servers: one in this process, one a `meshcar ca serve` process
// whose JS clock runs ahead or behind (helpers/clock-ahead.cjs).

import t from 'tap';
import { request } from 'node:https';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { caToken } from '../../src/ca/commands.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { PRUNE_MARGIN_MS } from '../../src/ca/token-ledger.js';
import { callCa, startTestCa } from '../helpers/ca.js';
import { ecKeys } from '../helpers/hostile-csr.js';
import { startMeshcar } from '../helpers/process.js';

const AHEAD_MS = 2 * 3_600_000;
const MINUTE_MS = 60_000;

const jtiOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;

async function signBody(): Promise<string> {
  const keys = ecKeys();
  return JSON.stringify({ csr: await buildCsr(keys.privateKey, keys.publicKey, 'spiffe://mesh.local/svc/orders') });
}

/**
 * POST /v1/sign to a server whose clock is off: its own TLS certificate starts 2 h in this
 * host's future (or past), so the handshake does not check its dates (what is tested is its ledger).
 */
function signAtSkewed(url: string, token: string, body: string): Promise<{ status: number; error?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v1/sign', url), { method: 'POST', rejectUnauthorized: false, agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(JSON.parse(text) as { error?: string }) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A second `meshcar ca serve` on the folder `dir`, its JS clock `offsetMs` off the host's; stopped at the end of `t`. */
async function skewedServer(t: Tap.Test, dir: string, offsetMs: number): Promise<string> {
  const config = join(t.testdir(), 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${dir}\nlisten: 127.0.0.1:0\nmaxTtl: 24h\nrateLimit: {rate: 1000/s, burst: 1000}\nlog: {level: info}\n`);
  const server = startMeshcar(['ca', 'serve', '--config', config], {
    nodeArgs: ['--require', new URL('../helpers/clock-ahead.cjs', import.meta.url).pathname],
    env: { MESHCAR_TEST_CLOCK_AHEAD_MS: String(offsetMs) },
  });
  t.teardown(() => server.stop());
  return String((await server.waitFor((line) => line.msg === 'CA server listening', 15_000)).url);
}

t.test('a server whose clock is ahead keeps the entries of tokens the others still accept', async (t) => {
  const a = await startTestCa();
  t.teardown(() => a.close());
  const bundle = await readFile(join(a.dir, 'bundle.pem'), 'utf8');
  const signAt = async (token: string) => (await callCa(a.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body: await signBody(), headers: { authorization: `Bearer ${token}` } })).status;
  const ledger = async () => Object.keys(JSON.parse(await readFile(join(a.dir, 'used-tokens.json'), 'utf8')) as Record<string, number>);
  const aheadUrl = await skewedServer(t, a.dir, AHEAD_MS);

  const short = await caToken(a.dir, 'orders', 10 * MINUTE_MS, true);
  t.equal(await signAt(short), 200, 'a 10-minute single-use token is spent');
  t.equal(await signAt(short), 401, 'and refused the second time');

  const unspent = await caToken(a.dir, 'orders', 10 * MINUTE_MS, true);
  t.match(await signAtSkewed(aheadUrl, unspent, await signBody()), { status: 401, error: 'token_expired' }, 'the server 2 h ahead refuses a token expired by its own clock');
  const long = await caToken(a.dir, 'orders', 5 * 60 * MINUTE_MS, true);
  t.equal((await signAtSkewed(aheadUrl, long, await signBody())).status, 200, 'the server 2 h ahead spends another token');
  t.ok((await ledger()).includes(jtiOf(short)), 'its write keeps the 10-minute token, expired by its clock only');

  await a.restart();
  t.equal(await signAt(short), 401, 'after a restart the spent token is still refused');
  t.equal(await signAt(unspent), 200, 'and the unspent one still works there');
});

t.test('a server whose clock is behind still finds the entry of a token it accepts after its end elsewhere', async (t) => {
  const a = await startTestCa();
  t.teardown(() => a.close());
  const bundle = await readFile(join(a.dir, 'bundle.pem'), 'utf8');
  const signAt = async (token: string) => (await callCa(a.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body: await signBody(), headers: { authorization: `Bearer ${token}` } })).status;
  const behindUrl = await skewedServer(t, a.dir, -AHEAD_MS);

  const token = await caToken(a.dir, 'orders', 2_000, true);
  const expMs = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1000;
  t.equal(await signAt(token), 200, 'a 2-second single-use token is spent');
  while (Date.now() <= expMs) await new Promise((resolve) => setTimeout(resolve, Math.max(1, expMs + 1 - Date.now())));
  t.equal(await signAt(await caToken(a.dir, 'orders', 10 * MINUTE_MS, true)), 200, 'another spend rewrites the ledger after the first token ended');
  t.match(await signAtSkewed(behindUrl, token, await signBody()), { status: 401, error: 'token_used' }, 'the server 2 h behind, for which the token is still valid, refuses it as spent');
});

t.test('entries go once their token ended more than the margin ago', async (t) => {
  const a = await startTestCa();
  t.teardown(() => a.close());
  const bundle = await readFile(join(a.dir, 'bundle.pem'), 'utf8');
  const nowSeconds = Math.floor(Date.now() / 1000);
  const path = join(a.dir, 'used-tokens.json');
  await writeFile(path, JSON.stringify({ past: nowSeconds - PRUNE_MARGIN_MS / 1000 - 60, within: nowSeconds - PRUNE_MARGIN_MS / 1000 + 3_600 }), { mode: 0o600 });
  const token = await caToken(a.dir, 'orders', 10 * MINUTE_MS, true);
  t.equal((await callCa(a.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body: await signBody(), headers: { authorization: `Bearer ${token}` } })).status, 200);
  t.same(Object.keys(JSON.parse(await readFile(path, 'utf8')) as Record<string, number>).sort(), [jtiOf(token), 'within'].sort(), 'the spend wrote its own entry and dropped only the one past the margin');
});
