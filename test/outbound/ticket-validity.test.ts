// The outbound resumes an upstream's TLS session only while the upstream's certificate path,
// verified at the full handshake the ticket descends from, is within its dates, and only with
// the certificate and trust bundle it was made with. Node skips the verification on a resumed
// session and reports the first handshake's verdict (it even shows no server certificate
// then), and a TLS 1.3 upstream hands a new ticket on every resumed connection: an upstream
// whose SVID expired (its renewals failing) stayed trusted for as long as the outbound kept
// dialling it, and a ticket handed after a rotation cleared the caches (a handshake in flight
// across it) kept a retired root trusted, or our old certificate in use. Real inbound with
// `sessionResumption: true`, the outbound's real dialler (dialHttp2, both codecs' path).

import t from 'tap';
import tls, { type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { dialHttp2 } from '../../src/outbound/mutual-tls.js';
import { verifiedPathWindow } from '../../src/outbound/ticket-validity.js';
import { validityProblem } from '../../src/identity/peer-validity.js';
import type { UpstreamEndpoint } from '../../src/outbound/endpoints.js';
import { startInbound, SERVER_ID, FRONTEND_ID, type InboundFixture } from '../helpers/inbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import { MONTH_13, redated } from '../helpers/odd-dates.js';

type Dialled = { resumed: boolean } | { error: string };

/** Dials the fixture's inbound with `identity` and `tickets`: resumed or not, or the error's code. */
async function dialOnce(fx: InboundFixture, identity: WorkloadIdentity, tickets: Map<string, Buffer>): Promise<Dialled> {
  const endpoint = { address: '127.0.0.1', port: fx.port, key: `127.0.0.1:${fx.port}` } as UpstreamEndpoint;
  let socket: TLSSocket | undefined;
  try {
    socket = await dialHttp2(endpoint, { identity, checkServerIdentity: verifyServerSpiffeId(SERVER_ID), timeoutMs: 3000 }, tickets);
    const resumed = socket.isSessionReused();
    // TLS 1.3 tickets come after the handshake: wait for one before hanging up
    const until = Date.now() + 2000;
    while (!tickets.has(endpoint.key) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return { resumed };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? String(err) };
  } finally {
    socket?.destroy();
  }
}

t.test('a ticket is not resumed once the upstream certificate it was issued under has expired', async (t) => {
  // a server certificate that expires within the test (second-granular dates: 3.5 s is 3-4 s)
  const fx = await startInbound({ sessionResumption: true, serverLifetimeMs: 3500 });
  t.teardown(() => fx.close());
  const notAfterMs = fx.identity.current().notAfter.getTime();
  const identity = new WorkloadIdentity(validateSvid(await fx.client(FRONTEND_ID), FRONTEND_ID), pino({ level: 'silent' }));
  const tickets = new Map<string, Buffer>();
  const key = `127.0.0.1:${fx.port}`;

  t.same(await dialOnce(fx, identity, tickets), { resumed: false }, 'the first dial is a full handshake');
  t.same(await dialOnce(fx, identity, tickets), { resumed: true }, 'the second resumes (the control: resumption is on)');
  t.ok(tickets.has(key), 'a ticket is kept');
  t.ok(Date.now() < notAfterMs, 'all before the upstream certificate expired');

  while (Date.now() <= notAfterMs + 50) await new Promise((r) => setTimeout(r, 20));
  t.same(await dialOnce(fx, identity, tickets), { error: 'CERT_HAS_EXPIRED' }, 'after it expired: a full handshake, refused for the expired certificate');
  t.notOk(tickets.has(key), 'and no ticket is left for the next dial');
});

t.test('a ticket is not resumed once our trust bundle no longer holds the root that verified it', async (t) => {
  // the upstream's certificate is from root A; we trust A and B, then B alone (A retired)
  const fx = await startInbound({ sessionResumption: true });
  t.teardown(() => fx.close());
  const b = await makePki(fx.pki.trustDomain);
  const both = `${fx.pki.bundlePem}${b.bundlePem}`;
  fx.identity.swap(validateSvid({ ...(await fx.pki.issue(SERVER_ID)), bundlePem: both }, SERVER_ID));
  const own = await b.issue(FRONTEND_ID);
  const identity = new WorkloadIdentity(validateSvid({ ...own, bundlePem: both }, FRONTEND_ID), pino({ level: 'silent' }));
  const tickets = new Map<string, Buffer>();

  t.same(await dialOnce(fx, identity, tickets), { resumed: false }, 'the first dial is a full handshake');
  t.same(await dialOnce(fx, identity, tickets), { resumed: true }, 'the second resumes (the control)');
  // the rotation's clearing of the caches is left out: a ticket handed after it looks like this
  identity.swap(validateSvid({ ...own, bundlePem: b.bundlePem }, FRONTEND_ID));
  const after = await dialOnce(fx, identity, tickets);
  t.ok('error' in after, `under the new bundle: a full handshake, and the upstream is refused (${JSON.stringify(after)})`);
});

t.test('a ticket is not resumed once our certificate has been renewed (the callee would see the old one)', async (t) => {
  const fx = await startInbound({ sessionResumption: true });
  t.teardown(() => fx.close());
  const identity = new WorkloadIdentity(validateSvid(await fx.pki.issue(FRONTEND_ID), FRONTEND_ID), pino({ level: 'silent' }));
  const tickets = new Map<string, Buffer>();
  t.same(await dialOnce(fx, identity, tickets), { resumed: false }, 'the first dial is a full handshake');
  t.same(await dialOnce(fx, identity, tickets), { resumed: true }, 'the second resumes (the control)');
  // a renewal, same bundle; the rotation's clearing of the caches left out, as above
  identity.swap(validateSvid(await fx.pki.issue(FRONTEND_ID), FRONTEND_ID));
  t.same(await dialOnce(fx, identity, tickets), { resumed: false }, 'after it: a full handshake, with the new certificate');
});

t.test('a TLS 1.2 upstream resumes too (the control for its tickets)', async (t) => {
  const pki = await makePki('mesh.test');
  const upstream = validateSvid(await pki.issue(SERVER_ID), SERVER_ID);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(FRONTEND_ID), FRONTEND_ID), pino({ level: 'silent' }));
  const server = tls.createServer({ key: upstream.privateKeyPem, cert: upstream.chainPem, ca: upstream.bundlePem, ...MTLS_SERVER_OPTIONS, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
  server.on('secureConnection', (socket: TLSSocket) => socket.on('error', () => {}));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const endpoint = { address: '127.0.0.1', port, key: `127.0.0.1:${port}` } as UpstreamEndpoint;
  const tickets = new Map<string, Buffer>();
  const resumed: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const socket = await dialHttp2(endpoint, { identity, checkServerIdentity: verifyServerSpiffeId(SERVER_ID), timeoutMs: 3000 }, tickets);
    resumed.push(socket.isSessionReused());
    socket.destroy();
  }
  t.same(resumed, [false, true, true], 'a full handshake, then resumed twice');
});

t.test('a verified path whose dates cannot be read gives a window that refuses', async (t) => {
  const pki = await makePki('mesh.test');
  const leaf = await pki.issue(SERVER_ID);
  const odd = new X509Certificate(await redated(leaf.certificatePem, pki.issuer.key, { notBefore: MONTH_13 }));
  t.ok(validityProblem(verifiedPathWindow(odd), Date.now()), 'refused (NaN compares as neither past nor future)');
  const plain = new X509Certificate(leaf.certificatePem);
  t.same(verifiedPathWindow(plain), { notBeforeMs: Date.parse(plain.validFrom), notAfterMs: Date.parse(plain.validTo) }, 'else its dates');
});
