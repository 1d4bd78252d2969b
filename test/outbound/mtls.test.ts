// Mutual TLS toward the upstream: the upstream sees our SVID; a server that is not the
// configured SPIFFE ID (or not from our trust bundle) gets no request, the app gets 502
// upstream_identity_mismatch, and no session with it is kept. After a rotation, sessions that
// are open carry on, and the next new session presents the new certificate (full handshake).

import t from 'tap';
import http from 'node:http';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { outboundFailure } from '../../src/tls-failures/describe.js';
import { validateSvid } from '../../src/identity/svid.js';
import { APP_ID, appIdentity, makePki, request, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

t.test('the upstream sees our SPIFFE ID in a client certificate', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const res = await request(fx.port);
  t.equal(res.status, 200);
  t.equal(res.json().callerId, APP_ID);
  t.equal(upstream.handshakes[0]?.clientId, APP_ID, 'seen at the handshake');
  t.equal(upstream.handshakes[0]?.clientSerial, fx.identity.current().serialHex);
  t.equal(res.json().scheme, 'https');
});

t.test('a server with the wrong SPIFFE ID gets nothing; 502 upstream_identity_mismatch, every time', async (t) => {
  const pki = await makePki(TD);
  // a genuine SVID of our trust domain, but for another service
  const impostor = await startUpstream(pki, { id: `spiffe://${TD}/svc/impostor` });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${impostor.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await impostor.close();
  });
  const first = await request(fx.port, { headers: { host: 'payments', 'x-request-id': 'id-mismatch' } });
  t.equal(first.status, 502);
  t.equal(first.headers['x-meshcar-error'], 'upstream_identity_mismatch');
  t.match(first.json<{ error: string; message: string; requestId: string }>(), {
    error: 'upstream_identity_mismatch',
    // the endpoint that is wrong, of maybe several: the one to correct in endpoints (or identity)
    message: `127.0.0.1:${impostor.port}: expected spiffe://mesh.test/svc/payments, but the server is spiffe://mesh.test/svc/impostor`,
    requestId: 'id-mismatch',
  });
  const second = await request(fx.port);
  t.equal(second.status, 502, 'a retry fails the same way');
  t.equal(second.headers['x-meshcar-error'], 'upstream_identity_mismatch');
  t.equal(impostor.requests, 0, 'no request ever reached the impostor');
  t.equal(impostor.connections, 2, 'each attempt was a new connection: the refused one was not kept');
  t.equal(fx.outbound.sessionCount('payments'), 0);
  t.same(fx.observer.sessions.get('payments') ?? 0, 0, 'no session was reported open');
  const records = await fx.observer.waitForRequests(2);
  t.match(records[0], { status: 502, errorCode: 'upstream_identity_mismatch', peer: 'payments' });
});

t.test('a server from a foreign CA, or with no SPIFFE ID, is refused too', async (t) => {
  const pki = await makePki(TD);
  const foreign = await makePki('other.test');
  const stranger = await startUpstream(pki, { leaf: await foreign.issue(`spiffe://other.test/svc/payments`) });
  const nameless = await startUpstream(pki, { leaf: await pki.issueWithUris([]) });
  const fx = await startOutbound(pki, [
    { name: 'stranger', endpoints: [`127.0.0.1:${stranger.port}`] },
    { name: 'nameless', endpoints: [`127.0.0.1:${nameless.port}`] },
  ]);
  t.teardown(async () => {
    await fx.close();
    await stranger.close();
    await nameless.close();
  });
  const a = await request(fx.port, { headers: { host: 'stranger' } });
  t.equal(a.status, 502);
  t.equal(a.headers['x-meshcar-error'], 'upstream_identity_mismatch', 'an untrusted chain is an identity failure');
  const b = await request(fx.port, { headers: { host: 'nameless' } });
  t.equal(b.status, 502);
  t.match(b.json<{ message: string }>().message, /no URI SAN/);
  t.equal(stranger.requests + nameless.requests, 0);
  t.ok(fx.observer.tlsFailures.some((f) => f.direction === 'outbound' && f.reason === 'unknown_ca'), 'the handshake failure is counted');
  t.ok(fx.observer.tlsFailures.some((f) => f.reason === 'bad_identity'));
});

// chains to our bundle and names payments, but is a CA certificate: it signs SVIDs, never is one;
// the second is cA with keyUsage digitalSignature alone, which OpenSSL (Node's cert.ca) calls no CA
for (const [kind, keyUsage] of [
  ['keyCertSign and cRLSign', { digitalSignature: true, keyCertSign: true, cRLSign: true }],
  ['digitalSignature alone', { digitalSignature: true }],
] as const) {
  t.test(`a server presenting a signing certificate (cA, keyUsage ${kind}) with the right SPIFFE ID is refused (X509-SVID §5.2)`, async (t) => {
    const pki = await makePki(TD);
    const signer = await startUpstream(pki, { leaf: await pki.issueWithUris([UPSTREAM_ID], { ca: true, keyUsage }) });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${signer.port}`] }]);
    t.teardown(async () => {
      await fx.close();
      await signer.close();
    });
    const res = await request(fx.port);
    t.equal(res.status, 502);
    t.equal(res.headers['x-meshcar-error'], 'upstream_identity_mismatch');
    t.match(res.json<{ message: string }>().message, /CA certificate/);
    t.equal(signer.requests, 0, 'no request reached it');
    t.ok(fx.observer.tlsFailures.some((f) => f.direction === 'outbound' && f.reason === 'bad_identity'), 'counted as bad_identity');
  });
}

// a chain our bundle signs, with the right SPIFFE ID, that OpenSSL refuses for what the
// certificate itself says: no serverAuth, or a critical extension it does not know. Not a
// reachability problem (503 upstream_unavailable "could not reach", as they were): the same 502
// as an untrusted chain
for (const [kind, options, reason] of [
  ['an extended key usage without serverAuth', { extKeyUsage: { clientAuth: true } }, /unsuitable certificate purpose/],
  ['an unknown critical extension', { unknownCriticalExtension: true }, /unhandled critical extension/],
] as const) {
  t.test(`a server whose certificate has ${kind}: 502 upstream_identity_mismatch`, async (t) => {
    const pki = await makePki(TD);
    const server = await startUpstream(pki, { leaf: await pki.issueWithUris([UPSTREAM_ID], options) });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${server.port}`] }]);
    t.teardown(async () => {
      await fx.close();
      await server.close();
    });
    const res = await request(fx.port);
    t.equal(res.status, 502);
    t.equal(res.headers['x-meshcar-error'], 'upstream_identity_mismatch');
    t.match(res.json<{ message: string }>().message, new RegExp(`^127\\.0\\.0\\.1:${server.port} presented a certificate we cannot trust: .*${reason.source}`));
    t.equal(server.requests, 0, 'no request reached it');
    t.ok(fx.observer.tlsFailures.some((f) => f.direction === 'outbound' && f.reason === 'invalid_certificate'), 'counted as invalid_certificate');
  });
}

t.test('after a rotation, the request in flight finishes on its session and new ones go on a new session with the new certificate', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const identity = await appIdentity(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], {}, identity);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const oldSerial = identity.current().serialHex;
  t.equal((await request(fx.port)).status, 200);
  await sleep(50); // let the TLS 1.3 session ticket arrive, so a resumption would be possible
  const inFlight = request(fx.port, { path: '/slow/300' });
  await sleep(50);

  identity.swap(validateSvid(await pki.issue(APP_ID), APP_ID));
  const newSerial = identity.current().serialHex;
  t.not(newSerial, oldSerial);

  // the callee ends a connection when the certificate it was opened with expires, streams and
  // all: new requests must not keep the old session busy up to that moment
  t.equal((await request(fx.port)).status, 200, 'a request after the swap is answered');
  t.equal((await inFlight).status, 200, 'the request in flight during the swap finished');
  t.equal(upstream.handshakes.length, 2, 'it went on a new session');
  t.equal(upstream.handshakes[1]?.clientSerial, newSerial, 'the new session presents the new certificate');
  t.equal(upstream.handshakes[1]?.resumed, false, 'a full handshake, not a resumption of the old identity');
  t.equal(upstream.handshakes[0]?.clientSerial, oldSerial);
  t.equal((await request(fx.port)).status, 200);
  t.equal(upstream.handshakes.length, 2, 'and the new session is reused');
});

t.test('an upstream that refuses our certificate: 503 says the peer closed right after the TLS handshake, both codecs', async (t) => {
  const pki = await makePki(TD);
  // its certificate is one we trust, but it trusts only another CA's callers (an old-root leaf
  // against a callee that trusts only the new root): it refuses ours once the handshake is done
  const other = await makePki(TD);
  const refuser = await startUpstream(other, { leaf: await pki.issue(UPSTREAM_ID) });
  t.teardown(() => refuser.close());
  for (const codec of ['node', 'meshcar'] as const) {
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${refuser.port}`] }], { codec });
    const res = await request(fx.port);
    await fx.close();
    t.equal(res.status, 503, codec);
    t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable', codec);
    t.match(res.json<{ message: string }>().message, new RegExp(`^127\\.0\\.0\\.1:${refuser.port} closed the connection right after the TLS handshake: most likely it refused our certificate \\(its /debug/tls names the reason\\), or it was stopping at that moment \\(a drain or a restart`), `${codec}: ${res.json<{ message: string }>().message}`);
    t.equal(refuser.requests, 0, codec);
  }
});

t.test("an endpoint that is a plain HTTP server (the app's own port): 503 and /debug/tls say it does not speak TLS, both codecs", async (t) => {
  const pki = await makePki(TD);
  const plain = http.createServer((_req, res) => res.end('hello from the app'));
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  t.teardown(() => plain.close());
  const port = (plain.address() as AddressInfo).port;
  for (const codec of ['node', 'meshcar'] as const) {
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${port}`] }], { codec });
    const res = await request(fx.port);
    await fx.close();
    t.equal(res.status, 503, codec);
    // it was OpenSSL's own line: "...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/...c:350:\n"
    t.equal(res.json<{ message: string }>().message, `could not reach 127.0.0.1:${port}: it does not speak TLS: what answered is not a TLS server (a plain HTTP port, such as the app's own?); the upstream's endpoints must name meshcar inbound listeners`, codec);
    // each dial (the request and its retries) is one failure, a protocol one
    t.ok(fx.observer.tlsFailures.length >= 1 && fx.observer.tlsFailures.every((f) => f.direction === 'outbound' && f.reason === 'protocol'), `${codec}: counted as protocol failures`);
  }
  // the words of that failure in the log and /debug/tls, from the same refusal as node's TLS reports it
  const err = await new Promise<Error>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.once('error', resolve);
  });
  t.equal(outboundFailure(`127.0.0.1:${port}`, 'protocol', err).message, "protocol mismatch: the server does not speak TLS (a plain HTTP port, such as an app's own?): the endpoint is no meshcar inbound listener", `not "no TLS version in common" (${(err as NodeJS.ErrnoException).code})`);
});

t.test('an endpoint that is a TLS server without HTTP/2 (an HTTPS/1.1 server, a CA port): 503 and /debug/tls say so, both codecs', async (t) => {
  const pki = await makePki(TD);
  const leaf = await pki.issue(UPSTREAM_ID);
  const https11 = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ALPNProtocols: ['http/1.1'] }, (socket) => socket.end());
  https11.listen(0, '127.0.0.1');
  await once(https11, 'listening');
  t.teardown(() => https11.close());
  const port = (https11.address() as AddressInfo).port;
  for (const codec of ['node', 'meshcar'] as const) {
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${port}`] }], { codec });
    const res = await request(fx.port);
    await fx.close();
    t.equal(res.status, 503, codec);
    // it was OpenSSL's own line: "...:SSL routines:ssl3_read_bytes:tlsv1 alert no application protocol:../deps/openssl/...:SSL alert number 120"
    t.equal(res.json<{ message: string }>().message, `could not reach 127.0.0.1:${port}: a TLS server that does not speak HTTP/2 (no ALPN h2: a CA's port, an HTTPS/1.1 server?); the upstream's endpoints must name meshcar inbound listeners`, codec);
  }
  const err = await new Promise<Error>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    socket.once('error', resolve);
  });
  t.equal(outboundFailure(`127.0.0.1:${port}`, 'protocol', err).message, 'protocol mismatch: the server speaks no HTTP/2 (no ALPN h2, which meshcar asks for): the endpoint is no meshcar inbound listener', `not "meshcar speaks h2 and http/1.1" (${(err as NodeJS.ErrnoException).code})`);
});
