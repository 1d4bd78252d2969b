// The CA client against the real CA server: token issuance, renewal over mutual TLS, refusals
// mapped to ca_refused with the CA's status and code, and servers that are not the CA.

import t from 'tap';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { impostor, startTestCa } from '../helpers/ca.js';
import { makePki } from '../helpers/pki.js';
import { freePort } from '../helpers/process.js';
import { caToken, openAuthority } from '../../src/ca/commands.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { CaClient, CaRefusedError } from '../../src/identity/ca-client.js';
import { isMeshcarError, type MeshcarError } from '../../src/errors.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;
const logger = pino({ level: 'silent' });

async function rejection(promise: Promise<unknown>): Promise<MeshcarError> {
  try {
    await promise;
  } catch (err) {
    if (isMeshcarError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** An HTTPS server with a leaf from the real CA for `spiffeId`, answering every request with `body`. */

t.test('CaClient against the real CA server', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const client = new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem, logger });

  t.test('first issuance by join token, then renewal over mTLS', async (t) => {
    const first = await client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, true) }, ttlMs: 600_000 });
    t.equal(first.spiffeId, ORDERS);
    const life = first.notAfter.getTime() - Date.now();
    t.ok(life > 590_000 && life <= 600_000, `ttl asked for and granted (${life} ms)`);
    t.match(first.chainPem, /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/, 'leaf + issuer');
    t.equal(first.bundlePem.trim(), bundlePem.trim());

    const renewed = await client.sign({ spiffeId: ORDERS, auth: { svid: first } });
    t.not(renewed.serialHex, first.serialHex);
    t.not(renewed.privateKeyPem, first.privateKeyPem, 'a new key for each certificate');
    t.ok(ca.logLines.some((l) => l.event === 'ca.issue' && l.auth === 'svid' && l.clientSerial === first.serialHex), 'the CA saw our SVID proven');
  });

  t.test('refusals carry status and the CA error code', async (t) => {
    const bad = await rejection(client.sign({ spiffeId: ORDERS, auth: { token: 'not.a.token' } }));
    t.equal(bad.code, 'ca_refused');
    t.ok(bad instanceof CaRefusedError);
    t.equal((bad as CaRefusedError).status, 401);
    t.match(bad.message, /refused \(401 /);

    // a token for payments cannot buy an orders certificate
    const other = await rejection(client.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'payments', 600_000, false) } }));
    t.match(other, { code: 'ca_refused', status: 403, caError: 'identity_not_allowed' });

    // a single-use token spent twice
    const once = await caToken(ca.dir, 'orders', 600_000, true);
    await client.sign({ spiffeId: ORDERS, auth: { token: once } });
    const again = await rejection(client.sign({ spiffeId: ORDERS, auth: { token: once } }));
    t.match(again, { code: 'ca_refused', status: 401, caError: 'token_used' });
  });

  t.test('a server that is not the CA is refused, though it chains to the bundle', async (t) => {
    const fake = await impostor(ca.dir, `spiffe://${TD}/svc/evil`);
    t.teardown(() => fake.server.close());
    const fooled = new CaClient({ url: fake.url, trustDomain: TD, bundlePem, logger });
    const err = await rejection(fooled.sign({ spiffeId: ORDERS, auth: { token: 'whatever' } }));
    t.equal(err.code, 'ca_mismatch', 'a permanent mismatch, not an outage');
    t.match(err.message, /not the meshcar CA of trust domain "mesh\.local" \(expected spiffe:\/\/mesh\.local\/meshcar\/ca, but the server is spiffe:\/\/mesh\.local\/svc\/evil/);
  });

  t.test('a CA certificate outside the configured bundle is refused, as a mismatch (not "unreachable")', async (t) => {
    const foreign = await makePki(TD);
    const distrusting = new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem: foreign.bundlePem, logger });
    const err = await rejection(distrusting.sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, true) } }));
    t.equal(err.code, 'ca_mismatch');
    t.match(err.message, /certificate at \S+ does not chain to identity\.ca\.bundle \([A-Z_]+\).*use the bundle\.pem of the CA that serves/);
    t.notMatch(err.message, /unreachable/);
  });

  t.test('a plain HTTP server at the URL: a mismatch saying it does not speak TLS, not "unreachable ... start the CA"', async (t) => {
    const plain = (await import('node:http')).createServer((_req, res) => res.end('hello')).listen(0, '127.0.0.1');
    await once(plain, 'listening');
    t.teardown(() => plain.close());
    const client = new CaClient({ url: `https://127.0.0.1:${(plain.address() as AddressInfo).port}`, trustDomain: TD, bundlePem, logger });
    const err = await rejection(client.sign({ spiffeId: ORDERS, auth: { token: 'x' } }));
    t.equal(err.code, 'ca_mismatch', `final: no retry mends it (${String(err.code)}: ${err.message})`);
    t.match(err.message, /^the server at https:\/\/127\.0\.0\.1:\d+ does not speak TLS \(its first bytes were no TLS record: a plain HTTP port\?\); this will not mend itself: identity\.ca\.url must name the CA's listen address/);
    t.notMatch(err.message, /\n/, 'one line, without OpenSSL\'s own text');
  });

  t.test('nothing listening, or a server that never answers', async (t) => {
    const closedPort = await freePort();
    const down = new CaClient({ url: `https://127.0.0.1:${closedPort}`, trustDomain: TD, bundlePem, logger });
    t.match(await rejection(down.sign({ spiffeId: ORDERS, auth: { token: 'x' } })), { code: 'ca_unreachable', message: /ECONNREFUSED/ });

    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    t.teardown(() => {
      sockets.forEach((s) => s.destroy());
      silent.close();
    });
    const slow = new CaClient({ url: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, trustDomain: TD, bundlePem, logger, timeoutMs: 300 });
    const started = Date.now();
    t.match(await rejection(slow.sign({ spiffeId: ORDERS, auth: { token: 'x' } })), { code: 'ca_unreachable', message: /no answer within 300 ms/ });
    t.ok(Date.now() - started < 2000, 'the deadline holds');
  });

  t.test('only https URLs', async (t) => {
    t.throws(() => new CaClient({ url: 'http://127.0.0.1:1', trustDomain: TD, bundlePem, logger }), { code: 'config_invalid' });
  });
});
