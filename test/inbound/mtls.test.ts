// Mutual TLS on the inbound listener: only callers with a valid SVID of our trust domain get
// through; every other handshake or connection is refused and counted by reason.

import t from 'tap';
import tls from 'node:tls';
import { generateKeyPairSync } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { FRONTEND_ID, h1Request, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';

/** Raw TLS: connect, send one HTTP/1.1 request, read until close. */
function rawAttempt(port: number, options: tls.ConnectionOptions): Promise<{ secure: boolean; text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    let secure = false;
    let error: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined, ...options });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      secure = true;
      socket.write('GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ secure, text, ...(error ? { error } : {}) }));
    socket.setTimeout(3000, () => socket.destroy());
  });
}

t.test('inbound mutual TLS', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const good = await fx.tlsOptions();

  t.test('a caller with a valid SVID gets the app answer, over HTTP/1.1 and HTTP/2', async (t) => {
    const res = await h1Request(fx.port, good, { path: '/orders/1' });
    t.equal(res.status, 200);
    t.equal(res.headers['x-app'], 'echo');
    t.equal(JSON.parse(res.body).url, '/orders/1');
    const session = await h2Connect(fx.port, good);
    t.teardown(() => session.close());
    const h2 = await h2Request(session, { ':path': '/orders/2' });
    t.equal(h2.status, 200);
    t.equal(JSON.parse(h2.body.toString()).url, '/orders/2');
    const records = await fx.observer.waitForRequests(2);
    t.same(records.map((r) => [r.direction, r.peer, r.method, r.path, r.status]), [
      ['inbound', 'frontend', 'GET', '/orders/1', 200],
      ['inbound', 'frontend', 'GET', '/orders/2', 200],
    ]);
  });

  t.test('TLS 1.1 and below are refused; TLS 1.2 works', async (t) => {
    const old = await rawAttempt(fx.port, { ...good, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    t.notOk(old.secure, 'no TLS 1.1 handshake');
    const v12 = await rawAttempt(fx.port, { ...good, maxVersion: 'TLSv1.2' });
    t.ok(v12.secure);
    t.match(v12.text, /^HTTP\/1\.1 200/);
  });

  t.test('no client certificate: the handshake is refused (node tls and openssl s_client)', async (t) => {
    const before = fx.observer.tlsFailures.length;
    const attempt = await rawAttempt(fx.port, { ca: fx.pki.bundlePem });
    t.equal(attempt.text, '', 'no HTTP answer');
    t.ok(attempt.error, `the client sees an error (${attempt.error})`);
    const dir = await mkdtemp(join(tmpdir(), 'meshcar-inbound-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'bundle.pem'), fx.pki.bundlePem);
    const out = await new Promise<string>((resolve) => {
      const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${fx.port}`, '-CAfile', join(dir, 'bundle.pem'), '-tls1_3', '-ign_eof'], { timeout: 5000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
      child.stdin?.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    t.notMatch(out, /HTTP\/1\.1 200/, 'openssl gets no HTTP answer');
    t.match(out, /alert certificate required/i, 'openssl reports the refusal');
    const failures = await fx.observer.waitForTlsFailures(before + 2);
    t.same(failures.slice(before).map((f) => f.reason), ['no_client_cert', 'no_client_cert']);
  });

  t.test('a certificate from a foreign CA is refused as unknown_ca', async (t) => {
    const foreign = await makePki(TD);
    const leaf = await foreign.issue(FRONTEND_ID);
    const before = fx.observer.tlsFailures.length;
    const attempt = await rawAttempt(fx.port, { ca: fx.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem });
    t.equal(attempt.text, '');
    const failures = await fx.observer.waitForTlsFailures(before + 1);
    t.same(failures.slice(before), [{ direction: 'inbound', reason: 'unknown_ca' }]);
  });

  t.test('an expired certificate is refused as expired', async (t) => {
    const leaf = await fx.pki.issue(FRONTEND_ID, { now: new Date(Date.now() - 7_200_000), lifetimeMs: 3_600_000 });
    const before = fx.observer.tlsFailures.length;
    const attempt = await rawAttempt(fx.port, { ca: fx.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem });
    t.equal(attempt.text, '');
    const failures = await fx.observer.waitForTlsFailures(before + 1);
    t.same(failures.slice(before), [{ direction: 'inbound', reason: 'expired' }]);
  });

  t.test('two URI SANs, none, or a foreign trust domain: the connection is closed as bad_identity', async (t) => {
    const cases = [
      await fx.pki.issueWithUris([FRONTEND_ID, `spiffe://${TD}/svc/admin`]),
      await fx.pki.issueWithUris([]),
      await fx.pki.issueWithUris(['spiffe://other.test/svc/frontend']),
    ];
    const before = fx.observer.tlsFailures.length;
    for (const leaf of cases) {
      const attempt = await rawAttempt(fx.port, { ca: fx.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem });
      t.equal(attempt.text, '', 'no HTTP answer');
    }
    const failures = await fx.observer.waitForTlsFailures(before + 3);
    t.same(failures.slice(before).map((f) => f.reason), ['bad_identity', 'bad_identity', 'bad_identity']);
    t.equal(fx.observer.requests.filter((r) => r.peer !== 'frontend').length, 0, 'no request reached the app');
  });

  // OpenSSL security level 2 (tls-contexts.ts TLS_POLICY): Node's default of 1 took it, from
  // any issuer of the bundle (an identity.files operator's CA), where our CA signs nothing
  // under 2048 bits; the caller offers a level 0 list, as an old client may
  t.test('a caller with an RSA-1024 key under a bundle CA is refused as invalid_certificate', async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const leaf = await fx.pki.issue(FRONTEND_ID, { key: { privateKeyPem: privateKey, publicKeyPem: publicKey } });
    const before = fx.observer.tlsFailures.length;
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      // from an address of its own (it spends its bytes of the address's budget)
      const attempt = await rawAttempt(fx.port, { ca: fx.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, maxVersion, ciphers: 'DEFAULT:@SECLEVEL=0', localAddress: '127.0.0.9' });
      t.equal(attempt.text, '', `${maxVersion}: no HTTP answer`);
    }
    const failures = await fx.observer.waitForTlsFailures(before + 2);
    t.same(failures.slice(before).map((f) => f.reason), ['invalid_certificate', 'invalid_certificate']);
  });

  t.test('a client that connects and leaves, or speaks plain HTTP, does not crash the listener', async (t) => {
    const net = await import('node:net');
    // plain HTTP is answered (400, plain-http.test.ts): read, so that the server's close is seen
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const s = net.connect(fx.port, '127.0.0.1', () => s.end('GET / HTTP/1.1\r\n\r\n'));
      s.setEncoding('latin1');
      s.on('data', (c: string) => (text += c));
      s.on('error', () => {});
      s.on('close', () => resolve(text));
    });
    t.match(answer, /^HTTP\/1\.1 400 /, 'plain HTTP is answered 400');
    const res = await h1Request(fx.port, good);
    t.equal(res.status, 200, 'still serving');
  });
});
