import t, { type Test } from 'tap';
import tls, { type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { makePki, type TestPki } from '../helpers/pki.js';
import { validateSvid, type Svid } from '../../src/identity/svid.js';
import { buildIdentityTls, MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { peerIdentity, verifyServerSpiffeId, type PeerIdentityResult } from '../../src/identity/peer-identity.js';
import type { SvidMaterial } from '../../src/identity/svid.js';

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/svc/orders`;
const CLIENT_ID = `spiffe://${TD}/svc/frontend`;

/** A TLS server that answers every connection with the JSON of peerIdentity(). */
async function identityEchoServer(material: SvidMaterial, options: tls.TlsOptions, trustDomain = TD) {
  const svid = validateSvid(material, SERVER_ID);
  const server = tls.createServer({ ...buildIdentityTls(svid).options, ...options }, (socket) => {
    const result = peerIdentity(socket, trustDomain);
    socket.end(JSON.stringify(result.ok ? { ok: true, id: result.id.uri } : result));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Connects, reads to the end; resolves with the text or the connection error. */
function exchange(port: number, options: tls.ConnectionOptions): Promise<{ text?: string; error?: Error }> {
  return new Promise((resolve) => {
    let text = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve({ text }));
    socket.on('error', (error) => resolve({ error }));
  });
}

/**
 * A TLS server of `svid` (strict mutual TLS) that judges each caller with `judge` and answers
 * its ID, or 'refused'; resolves with its port and the trust options a client needs.
 */
async function judgingServer(t: Test, pki: TestPki, svid: Svid, judge: (socket: TLSSocket) => PeerIdentityResult) {
  const server = tls.createServer({ ...buildIdentityTls(svid).options, ...MTLS_SERVER_OPTIONS }, (socket) => {
    const result = judge(socket);
    socket.end(result.ok ? result.id.uri : 'refused');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  return { port, trustServer: { ca: pki.bundlePem, checkServerIdentity: verifyServerSpiffeId(SERVER_ID) } };
}

t.test('peer identity over real mutual TLS', async (t) => {
  const pki = await makePki(TD);
  const foreignPki = await makePki('other.test');
  const serverMaterial = await pki.issue(SERVER_ID);
  const strict = await identityEchoServer(serverMaterial, MTLS_SERVER_OPTIONS);
  // a server that lets untrusted callers finish the handshake, to see how peerIdentity judges them
  const lenient = await identityEchoServer(serverMaterial, { requestCert: true, rejectUnauthorized: false });
  t.teardown(() => {
    strict.server.close();
    lenient.server.close();
  });
  const trustServer = { ca: pki.bundlePem, checkServerIdentity: verifyServerSpiffeId(SERVER_ID) };
  const asClient = (m: SvidMaterial) => ({ key: m.privateKeyPem, cert: m.chainPem });

  t.test('the right SPIFFE ID is accepted', async (t) => {
    const client = await pki.issue(CLIENT_ID);
    const { text, error } = await exchange(strict.port, { ...trustServer, ...asClient(client) });
    t.error(error);
    t.same(JSON.parse(text ?? '{}'), { ok: true, id: CLIENT_ID });
  });

  t.test('the same certificate, once known, is judged again for another trust domain', async (t) => {
    // a leaf seen before is kept with its ID: the kept ID must be the asked trust domain's
    const other = await identityEchoServer(serverMaterial, MTLS_SERVER_OPTIONS, 'other.test');
    t.teardown(() => other.server.close());
    const client = await pki.issue(CLIENT_ID);
    for (let round = 0; round < 2; round++) {
      const accepted = await exchange(strict.port, { ...trustServer, ...asClient(client) });
      t.same(JSON.parse(accepted.text ?? '{}'), { ok: true, id: CLIENT_ID }, `round ${round}: accepted in ${TD}`);
      const refused = JSON.parse((await exchange(other.port, { ...trustServer, ...asClient(client) })).text ?? '{}');
      t.equal(refused.ok, false, `round ${round}: refused in other.test`);
      t.match(refused.message, /trust domain "mesh\.test", not "other\.test"/);
    }
  });

  t.test('an ID of a foreign trust domain is refused', async (t) => {
    const client = await pki.issue('spiffe://other.test/svc/frontend');
    const { text } = await exchange(strict.port, { ...trustServer, ...asClient(client) });
    const result = JSON.parse(text ?? '{}');
    t.equal(result.ok, false);
    t.equal(result.reason, 'bad_identity');
    t.match(result.message, /trust domain "other\.test", not "mesh\.test"/);
  });

  t.test('no URI SAN, or two, is refused', async (t) => {
    const none = await pki.issueWithUris([]);
    const noneResult = JSON.parse((await exchange(strict.port, { ...trustServer, ...asClient(none) })).text ?? '{}');
    t.match(noneResult, { ok: false, reason: 'bad_identity', message: /no URI SAN/ });
    const two = await pki.issueWithUris([CLIENT_ID, `spiffe://${TD}/svc/admin`]);
    const twoResult = JSON.parse((await exchange(strict.port, { ...trustServer, ...asClient(two) })).text ?? '{}');
    t.match(twoResult, { ok: false, reason: 'bad_identity', message: /2 URI SANs/ });
  });

  t.test('a client from a foreign CA fails the handshake; a lenient server still refuses it', async (t) => {
    const client = await foreignPki.issue(`spiffe://other.test/svc/frontend`);
    const strictResult = await exchange(strict.port, { ...trustServer, ...asClient(client) });
    t.notOk(strictResult.text, 'the strict server sends nothing');
    const lenientResult = JSON.parse((await exchange(lenient.port, { ...trustServer, ...asClient(client) })).text ?? '{}');
    t.match(lenientResult, { ok: false, reason: 'unknown_ca' });
  });

  t.test('no client certificate', async (t) => {
    const result = JSON.parse((await exchange(lenient.port, trustServer)).text ?? '{}');
    t.match(result, { ok: false, reason: 'no_client_cert' });
  });

  t.test('a socket already destroyed: a refusal, never a throw', async (t) => {
    // getSession() gives null once the handle is gone; peerIdentity must still answer
    const results: unknown[] = [];
    const server = tls.createServer({ ...buildIdentityTls(validateSvid(serverMaterial, SERVER_ID)).options, ...MTLS_SERVER_OPTIONS }, (socket) => {
      socket.destroy();
      try {
        results.push(peerIdentity(socket, TD));
      } catch (err) {
        results.push(`threw: ${(err as Error).message}`);
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const client = await pki.issue(CLIENT_ID);
    await exchange((server.address() as AddressInfo).port, { ...trustServer, ...asClient(client) });
    t.match(results, [{ ok: false, reason: 'no_client_cert' }]);
  });

  t.test('checkServerIdentity pins the server SPIFFE ID, not its hostname', async (t) => {
    const client = await pki.issue(CLIENT_ID);
    // the server certificate has no IP SAN: Node's own check would refuse 127.0.0.1
    const right = await exchange(strict.port, { ...trustServer, ...asClient(client) });
    t.error(right.error);
    const wrong = await exchange(strict.port, {
      ca: pki.bundlePem,
      checkServerIdentity: verifyServerSpiffeId(`spiffe://${TD}/svc/payments`),
      ...asClient(client),
    });
    t.ok(wrong.error, 'the handshake is refused');
    t.equal((wrong.error as { code?: string }).code, 'upstream_identity_mismatch');
    t.match(wrong.error?.message, /expected spiffe:\/\/mesh\.test\/svc\/payments, but the server is spiffe:\/\/mesh\.test\/svc\/orders/);
  });

  t.test('checkServerIdentity refuses a server with no or several URI SANs', async (t) => {
    const check = verifyServerSpiffeId(SERVER_ID);
    const none = await pki.issueWithUris([]);
    const two = await pki.issueWithUris([SERVER_ID, CLIENT_ID]);
    for (const [material, pattern] of [[none, /no URI SAN/], [two, /2 URI SANs/]] as const) {
      const server = tls.createServer({ key: material.privateKeyPem, cert: material.chainPem }, (s) => s.end('hi'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const result = await exchange((server.address() as AddressInfo).port, { ca: pki.bundlePem, checkServerIdentity: check });
      server.close();
      t.match(result.error?.message, pattern);
    }
  });
});

t.test("a caller's leaf is copied once, and a new leaf is read afresh", async (t) => {
  const pki = await makePki(TD);
  const svid = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  const seen: Array<{ serial: string; cert: unknown; expiresAtMs: number }> = [];
  let anchorsPem = buildIdentityTls(svid).anchorsPem as string | undefined;
  const { port, trustServer } = await judgingServer(t, pki, svid, (socket) => {
    const result = peerIdentity(socket, TD, Date.now(), anchorsPem);
    if (result.ok) seen.push({ serial: result.certificate.serialNumber, cert: result.certificate, expiresAtMs: result.expiresAtMs });
    return result;
  });
  const first = await pki.issue(CLIENT_ID);
  const second = await pki.issue(CLIENT_ID, { lifetimeMs: 600_000 });
  for (const leaf of [first, first, second]) {
    const { text, error } = await exchange(port, { ...trustServer, key: leaf.privateKeyPem, cert: leaf.chainPem });
    t.error(error);
    t.equal(text, CLIENT_ID);
  }
  t.equal(seen.length, 3);
  t.equal(seen[1]?.cert, seen[0]?.cert, 'the same leaf on a second connection: the object made at its first (no copy per handshake)');
  t.not(seen[2]?.serial, seen[0]?.serial, 'another leaf of the same ID is its own certificate');
  t.ok((seen[2]?.expiresAtMs ?? Infinity) < (seen[0]?.expiresAtMs ?? 0), "and its own dates bound the connection's life");

  // a leaf that outlives the issuer it presents (no CA of ours makes one; another CA may): its
  // window depends on its path, so without the server's bundle named (the moments after a
  // bundle change) it is read with its path every time (with it: the next test)
  anchorsPem = undefined;
  const outliving = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
  for (let i = 0; i < 2; i++) {
    const { text, error } = await exchange(port, { ...trustServer, key: outliving.privateKeyPem, cert: outliving.chainPem });
    t.error(error);
    t.equal(text, CLIENT_ID);
  }
  t.equal(seen.length, 5);
  t.not(seen[4]?.cert, seen[3]?.cert, 'a leaf its issuer cuts short is not kept: read with its presented path on each connection');
  t.equal(seen[4]?.expiresAtMs, Date.parse(new X509Certificate(pki.issuerPem).validTo), "the presented issuer's end bounds the connection");
});

t.test('a leaf its issuer cuts short is kept for the trust bundle that verified its path, and its window still bounds', async (t) => {
  const pki = await makePki(TD);
  const svid = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  // the bundle a server verifies with; the test swaps it to stand for a rotation's new bundle
  let anchorsPem = buildIdentityTls(svid).anchorsPem;
  let nowMs: number | undefined;
  const seen: Array<{ cert?: unknown; expiresAtMs?: number; reason?: string }> = [];
  const { port, trustServer } = await judgingServer(t, pki, svid, (socket) => {
    const result = peerIdentity(socket, TD, nowMs ?? Date.now(), anchorsPem);
    seen.push(result.ok ? { cert: result.certificate, expiresAtMs: result.expiresAtMs } : { reason: result.reason });
    return result;
  });
  // outlives the issuer it presents, as a leaf made with its CA's lifetime a moment later does
  const outliving = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
  const connect = () => exchange(port, { ...trustServer, key: outliving.privateKeyPem, cert: outliving.chainPem });
  const issuerEnd = Date.parse(new X509Certificate(pki.issuerPem).validTo);

  for (let i = 0; i < 2; i++) t.equal((await connect()).text, CLIENT_ID);
  t.equal(seen[1]?.cert, seen[0]?.cert, 'kept: the object made at its first connection, no copy per handshake');
  t.equal(seen[1]?.expiresAtMs, issuerEnd, "the kept window is its path's: the issuer's end still bounds the connection");

  nowMs = issuerEnd + 1000;
  t.equal((await connect()).text, 'refused', 'past the issuer end, a kept leaf is refused');
  t.equal(seen[2]?.reason, 'expired', 'as expired (read again with its path, which has expired too)');
  nowMs = undefined;

  t.equal((await connect()).text, CLIENT_ID);
  const beforeSwap = seen[3]?.cert;
  anchorsPem = `${anchorsPem}\n`; // another bundle (a rotation's)
  t.equal((await connect()).text, CLIENT_ID);
  t.not(seen[4]?.cert, beforeSwap, 'under another trust bundle the leaf is read with its path again');
  t.equal(seen[4]?.expiresAtMs, issuerEnd, "and bounded by its path's end");
});

t.test('a leaf whose own dates are its window is kept for the bundle that verified it too, and never from a handshake not verified', async (t) => {
  const pki = await makePki(TD);
  const svid = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  let anchorsPem = buildIdentityTls(svid).anchorsPem;
  const seen: Array<{ cert?: unknown; expiresAtMs?: number; reason?: string }> = [];
  // lenient: a caller OpenSSL could not verify still reaches peerIdentity, which refuses it
  const server = tls.createServer({ ...buildIdentityTls(svid).options, requestCert: true, rejectUnauthorized: false }, (socket) => {
    const result = peerIdentity(socket, TD, Date.now(), anchorsPem);
    seen.push(result.ok ? { cert: result.certificate, expiresAtMs: result.expiresAtMs } : { reason: result.reason });
    socket.end(result.ok ? result.id.uri : 'refused');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const trustServer = { ca: pki.bundlePem, checkServerIdentity: verifyServerSpiffeId(SERVER_ID) };
  const connect = (key: string, cert: string) => exchange(port, { ...trustServer, key, cert });

  // ends before its issuer: its own dates are its path's window
  const leaf = await pki.issue(CLIENT_ID);
  for (let i = 0; i < 2; i++) t.equal((await connect(leaf.privateKeyPem, leaf.chainPem)).text, CLIENT_ID);
  t.equal(seen[1]?.cert, seen[0]?.cert, 'kept under the bundle that verified it');
  anchorsPem = `${anchorsPem}\n`; // another bundle (a rotation's, a root retired)
  t.equal((await connect(leaf.privateKeyPem, leaf.chainPem)).text, CLIENT_ID);
  t.not(seen[2]?.cert, seen[1]?.cert, 'under another bundle it is read with its path again: the path that verified it may chain to a root no longer trusted');

  // outlives its issuer, sent first without it: OpenSSL cannot verify it, and its own dates
  // (no issuer to cut them) must not become the window of the next caller that sends it whole
  const outliving = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
  t.equal((await connect(outliving.privateKeyPem, outliving.certificatePem)).text, 'refused', 'the leaf alone is refused');
  t.equal((await connect(outliving.privateKeyPem, outliving.chainPem)).text, CLIENT_ID, 'with its issuer, accepted');
  t.equal(seen.at(-1)?.expiresAtMs, Date.parse(new X509Certificate(pki.issuerPem).validTo), "bounded by its issuer's end: nothing was kept from the handshake that was not verified");
});

t.test('the window is every presented certificate valid now, whatever order they were sent in', async (t) => {
  const pki = await makePki(TD);
  const svid = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  const judged: Array<{ expiresAtMs?: number; reason?: string; message?: string }> = [];
  let nowMs: number | undefined;
  // no bundle named (every connection read with its path) and then the bundle named (kept)
  for (const anchorsPem of [undefined, buildIdentityTls(svid).anchorsPem]) {
    const { port, trustServer } = await judgingServer(t, pki, svid, (socket) => {
      const result = peerIdentity(socket, TD, nowMs ?? Date.now(), anchorsPem);
      judged.push(result.ok ? { expiresAtMs: result.expiresAtMs } : { reason: result.reason, message: result.message });
      return result;
    });
    const label = anchorsPem === undefined ? 'read every time' : 'kept per bundle';
    const issuerEnd = Date.parse(new X509Certificate(pki.issuerPem).validTo);
    // outlives its issuer; sent as [L, L, I], the issuer hides behind the repeated leaf
    const outliving = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
    const repeated = outliving.certificatePem + outliving.certificatePem + pki.issuerPem;
    let ticket: Buffer | undefined;
    const connect = (cert: string, session?: Buffer, key = outliving.privateKeyPem) =>
      new Promise<string>((resolve) => {
        let text = '';
        const socket = tls.connect({ host: '127.0.0.1', port, ...trustServer, key, cert, session });
        socket.on('session', (s: Buffer) => (ticket = s));
        socket.setEncoding('utf8');
        socket.on('data', (c: string) => (text += c));
        socket.on('close', () => resolve(text));
        socket.on('error', () => {});
      });
    nowMs = undefined;
    for (let i = 0; i < 2; i++) {
      t.equal(await connect(repeated), CLIENT_ID, `${label}: [L, L, I] is accepted (OpenSSL finds I)`);
      t.equal(judged.at(-1)?.expiresAtMs, issuerEnd, `${label}: bounded by the issuer's end, not the leaf's`);
    }
    nowMs = issuerEnd + 1000; // the issuer has expired since; a resumption is not verified again by OpenSSL
    t.equal(await connect(repeated, ticket), 'refused', `${label}: a resumption past the issuer's end is refused`);
    t.equal(judged.at(-1)?.reason, 'expired');
    nowMs = undefined;

    // an expired extra certificate (an old intermediate sent beside its successor) is no part of the path
    const expired = await pki.issueWithUris([CLIENT_ID], { now: new Date(Date.now() - 10 * 86_400_000), lifetimeMs: 86_400_000 });
    t.equal(await connect(outliving.chainPem + expired.certificatePem), CLIENT_ID, `${label}: an expired extra certificate does not refuse the caller`);
    t.equal(judged.at(-1)?.expiresAtMs, issuerEnd, `${label}: nor changes its window`);

    // more certificates than are judged: refused, however they would chain
    // (a leaf not seen before: a kept one is judged on the path it was kept with)
    const fresh = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
    const many = fresh.certificatePem.repeat(10) + pki.issuerPem;
    t.equal(await connect(many, undefined, fresh.privateKeyPem), 'refused', `${label}: a path of 11 certificates is refused`);
    t.match(judged.at(-1), { reason: 'other', message: /more than 10 certificates/ });
  }
});
