// A caller with a valid leaf may present, beside it, certificates of its own making that all
// sign one another (and one with its real issuer's name and key). When the trust bundle then
// drops a root, the check of every open caller (caller-trust.ts, chain-to-roots.ts) searched
// every path through everything all callers presented, on the event loop: a review measured
// 12 such connections at 5.5 s and 16 at 13 s, growing with the cube, the attacker's own
// connections kept. Here 16 connections of such a caller and two genuine callers: the bundle's
// change is checked in well under a second, the genuine caller under the dropped root is cut,
// the one under the kept root and the planter (its leaf is genuine) are kept. Real inbound,
// real mTLS clients, certificates from the test CA and of the caller's own making.

import t from 'tap';
import http2 from 'node:http2';
import tls from 'node:tls';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { issuerName } from '../../src/ca/x509-profile.js';
import { validateSvid } from '../../src/identity/svid.js';
import { startInbound, SERVER_ID, FRONTEND_ID, TD } from '../helpers/inbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import { madeAuthority, madeKey } from '../helpers/made-certs.js';
import { inboundUnderTwoRoots } from '../helpers/two-roots.js';
import { waitUntil } from '../helpers/outbound-fixture.js';

const DAY_MS = 86_400_000;
/** The planter's connections (the cubic search took 13 s over 16). */
const PLANTED_CONNECTIONS = 16;
/** What the check may take on a loaded machine: the bounded search takes ~10 ms here. */
const CHECK_BOUND_MS = 1_500;

async function connect(port: number, key: string, cert: string, ca: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { key, cert, ca, checkServerIdentity: () => undefined });
  session.on('error', () => {});
  await once(session, 'connect');
  return session;
}

function get(session: http2.ClientHttp2Session): Promise<number | string> {
  return new Promise((resolve) => {
    if (session.destroyed || session.closed) return resolve('session closed');
    const stream = session.request({ ':path': '/x' });
    stream.on('response', (headers) => resolve(headers[':status'] as number));
    stream.on('error', (err) => resolve(String(err)));
    stream.resume();
    stream.end();
  });
}

t.test('certificates a caller plants in its handshake cost the bundle-change check a bounded search', async (t) => {
  const { fx, a, b, both } = await inboundUnderTwoRoots(t);

  // the planter's own key signs everything it makes
  const own = await madeKey();
  const made = { organization: 'planted', commonName: 'loop' };
  // the real issuer's name, key and key identifier, issued by `made` (expired: OpenSSL passes it over)
  const lookalike = () =>
    madeAuthority({ subject: issuerName(TD), issuer: made, spki: a.issuer.spki, signingKey: own.signingKey, keyIdOf: a.issuer.spki, notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - 5 * DAY_MS) });
  // self-issued by `made` with one key: each one verifies as the issuer of every other
  const loop = () => madeAuthority({ subject: made, issuer: made, spki: own.spki, signingKey: own.signingKey });

  const planterLeaf = await a.issue(`spiffe://${TD}/svc/planter`);
  const planted: http2.ClientHttp2Session[] = [];
  t.teardown(() => planted.forEach((session) => session.destroy()));
  for (let i = 0; i < PLANTED_CONNECTIONS; i++) {
    // three beside its leaf: the inbound refuses more than four certificates before OpenSSL
    // parses them (tls-failures/handshake-gate.ts), as no SVID path has more
    const extras = [await lookalike(), a.issuerPem, await loop()];
    planted.push(await connect(fx.port, planterLeaf.privateKeyPem, planterLeaf.certificatePem + extras.join(''), both));
  }
  const keptCaller = await fx.client(FRONTEND_ID);
  const kept = await connect(fx.port, keptCaller.privateKeyPem, keptCaller.chainPem, both);
  const droppedCaller = await b.issue(`spiffe://${TD}/svc/billing`);
  const dropped = await connect(fx.port, droppedCaller.privateKeyPem, droppedCaller.chainPem, both);
  t.teardown(() => [kept, dropped].forEach((session) => session.destroy()));
  t.same(await Promise.all([get(planted[0]!), get(kept), get(dropped)]), [200, 200, 200], 'every caller served under A and B');

  // B dropped: every open connection is checked, synchronously, in the identity's 'rotated'
  const startedMs = performance.now();
  fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: a.bundlePem }, SERVER_ID));
  const tookMs = performance.now() - startedMs;
  t.ok(tookMs < CHECK_BOUND_MS, `the check of ${PLANTED_CONNECTIONS + 2} connections took ${tookMs.toFixed(0)} ms (bound ${CHECK_BOUND_MS} ms; the search over every path took 13 s)`);

  await waitUntil(() => dropped.destroyed || dropped.closed, "the B caller's session closed");
  t.not(await get(dropped), 200, 'the caller under the dropped root is cut');
  t.equal(await get(kept), 200, 'the caller under the kept root is still served');
  t.equal(await get(planted[0]!), 200, 'the planter too: its leaf is genuine, and its real issuer is among what it presented');
  t.equal(planted.filter((session) => !session.destroyed && !session.closed).length, PLANTED_CONNECTIONS, 'all its connections kept');
});

/** A raw mTLS HTTP/1.1 connection (TLS 1.3), resuming `session` when given. */
interface Raw {
  readonly socket: tls.TLSSocket;
  session?: Buffer;
}

async function rawConnect(port: number, key: string, cert: string, ca: string, session?: Buffer): Promise<Raw> {
  const socket = tls.connect({ host: '127.0.0.1', port, key, cert, ca, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
  const raw: Raw = { socket };
  socket.on('session', (ticket: Buffer) => (raw.session = ticket));
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return raw;
}

/** One GET's status line, or 'closed'. */
function rawGet(raw: Raw): Promise<string> {
  return new Promise((resolve) => {
    if (raw.socket.destroyed) return resolve('closed');
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      raw.socket.off('data', onData);
      resolve(text.split('\r\n')[0] as string);
    };
    raw.socket.on('data', onData);
    raw.socket.once('close', () => resolve('closed'));
    raw.socket.write('GET /x HTTP/1.1\r\nHost: orders\r\n\r\n');
  });
}

t.test("certificates planted beside a caller's path never cost a resumed caller its search", async (t) => {
  const fx = await startInbound({ sessionResumption: true });
  t.teardown(() => fx.close());
  const a = fx.pki; // the sidecar's own chain
  const b = await makePki(TD); // the resumed caller's chain, not ours: its issuer comes from the pool
  const c = await makePki(TD); // the root dropped, which nobody chains to
  const all = a.bundlePem + b.bundlePem + c.bundlePem;
  fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: all }, SERVER_ID));

  // the planter: a genuine leaf of A, and beside it certificates named as B's issuer, with its
  // key identifier, authorities valid now, on keys of its own: each passes the name and key
  // identifier match and costs a signature check
  const own = await madeKey();
  const planterLeaf = await a.issue(`spiffe://${TD}/svc/planter`);
  const raws: Raw[] = [];
  t.teardown(() => raws.forEach((raw) => raw.socket.destroy()));
  for (let i = 0; i < 4; i++) {
    const namesakes: string[] = [];
    // two beside its leaf and issuer (more than four certificates are refused before they are parsed)
    for (let j = 0; j < 2; j++) {
      const key = await madeKey();
      namesakes.push(await madeAuthority({ subject: issuerName(TD), issuer: { organization: 'planted', commonName: `n${i}-${j}` }, spki: key.spki, signingKey: own.signingKey, keyIdOf: b.issuer.spki }));
    }
    raws.push(await rawConnect(fx.port, planterLeaf.privateKeyPem, planterLeaf.certificatePem + a.issuerPem + namesakes.join(''), all));
  }
  // a caller of B with a full handshake: its path brings B's issuer
  const supplierLeaf = await b.issue(`spiffe://${TD}/svc/supplier`);
  const supplier = await rawConnect(fx.port, supplierLeaf.privateKeyPem, supplierLeaf.chainPem, all);
  raws.push(supplier);
  // the resumed caller of B: a first connection for its ticket, then the resumed one (leaf alone)
  const resumedLeaf = await b.issue(`spiffe://${TD}/svc/reports`);
  const first = await rawConnect(fx.port, resumedLeaf.privateKeyPem, resumedLeaf.chainPem, all);
  raws.push(first);
  t.equal(await rawGet(first), 'HTTP/1.1 200 OK', 'the resumed caller, first connection');
  await waitUntil(() => first.session !== undefined, 'a session ticket');
  first.socket.destroy();
  const resumed = await rawConnect(fx.port, resumedLeaf.privateKeyPem, resumedLeaf.chainPem, all, first.session);
  raws.push(resumed);
  t.ok(resumed.socket.isSessionReused(), 'resumed: its handshake shows its leaf alone');
  t.same(await Promise.all([rawGet(raws[0]!), rawGet(supplier), rawGet(resumed)]), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'], 'every caller served');

  // C dropped: A and B stay
  fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: a.bundlePem + b.bundlePem }, SERVER_ID));
  t.equal(await rawGet(resumed), 'HTTP/1.1 200 OK', "the resumed caller of B is kept: the planter's namesakes never reached the pool it is judged with");
  t.equal(await rawGet(supplier), 'HTTP/1.1 200 OK', 'the caller that brought B its issuer too');
  t.equal(await rawGet(raws[0]!), 'HTTP/1.1 200 OK', 'and the planter, whose own path is genuine');
});
