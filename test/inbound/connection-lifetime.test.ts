// How long a verified inbound connection may live, over real mutual TLS with certificates from
// the test CA: a caller whose certificate expired after its first handshake cannot get back in
// by resuming that TLS session (Node reports the first handshake's verdict on a resumed
// session); connections are closed when the caller's certificate expires; and HTTP/2 sessions
// get GOAWAY at their maximum age while the stream in flight finishes. The refusals are read
// from the real Prometheus rendering and the log, not from a recording observer.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { once, type EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makePki, type IssuedLeaf, type TestPki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { defaultTestCodec, FRONTEND_ID, h2Connect, h2Request, SERVER_ID, silentLogger, TD } from '../helpers/inbound-fixture.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { createInbound, type Inbound } from '../../src/inbound/index.js';
import { DEFAULT_INBOUND_LIMITS, readInbound, type InboundLimitsConfig } from '../../src/config/inbound-config.js';
import { parseYamlSource } from '../../src/config/yaml-source.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';

interface Setup {
  readonly pki: TestPki;
  readonly inbound: Inbound;
  readonly port: number;
  /** Every request the app received, as "METHOD /path". */
  readonly appSeen: string[];
  readonly metrics: Metrics;
  readonly logLines: Array<Record<string, unknown>>;
  /** Answers the held `/slow` requests. */
  releaseSlow(): void;
}

/** An inbound in front of an HTTP/1.1 app that records every request; `/slow` waits for releaseSlow(). */
async function setup(t: Tap.Test, limits?: InboundLimitsConfig): Promise<Setup> {
  const pki = await makePki(TD);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(SERVER_ID), SERVER_ID), silentLogger);
  const appSeen: string[] = [];
  const held: http.ServerResponse[] = [];
  const app = http.createServer((req, res) => {
    appSeen.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === '/slow') held.push(res);
    else res.end(`answer to ${req.url}`);
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const metrics = new Metrics();
  const logLines: Array<Record<string, unknown>> = [];
  const inbound = createInbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      app: { protocol: 'http', host: '127.0.0.1', port: (app.address() as AddressInfo).port },
      timeoutMs: 10_000,
      authorize: undefined,
      ...(limits ? { limits } : {}),
      // the resumed-session checks below need sessions to resume (off by default)
      sessionResumption: true,
    },
    identity,
    trustDomain: TD,
    ownSpiffeId: SERVER_ID,
    logger: memoryLogger(logLines, 'debug'),
    observer: new TrafficMetrics(metrics),
    // codec-node-connection-lifetime.test.ts re-runs this file on the node codec
    ...(defaultTestCodec() ? { codec: defaultTestCodec() } : {}),
  });
  const { port } = await inbound.listen();
  t.teardown(async () => {
    await inbound.close();
    app.closeAllConnections();
    app.close();
  });
  return {
    pki,
    inbound,
    port,
    appSeen,
    metrics,
    logLines,
    releaseSlow: () => {
      for (const res of held.splice(0)) res.end('slow answer');
    },
  };
}

function clientTls(pki: TestPki, leaf: IssuedLeaf): tls.ConnectionOptions {
  return { ca: pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined };
}

function notAfterMs(leaf: IssuedLeaf): number {
  return Date.parse(new X509Certificate(leaf.certificatePem).validTo);
}

/** Polls until `condition` holds; fails the wait after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** When `emitter` closed (ms since the epoch), or undefined if it was still open at `latestMs`. */
function closedBy(emitter: EventEmitter, latestMs: number): Promise<number | undefined> {
  return Promise.race([
    once(emitter, 'close').then(() => Date.now()),
    new Promise<undefined>((r) => setTimeout(r, Math.max(0, latestMs - Date.now()), undefined).unref()),
  ]);
}

interface Attempt {
  /** The handshake completed and the client resumed the offered session. */
  readonly reused: boolean;
  readonly text: string;
  /** The last session ticket the server gave on this connection. */
  readonly session: Buffer | undefined;
}

/** One raw TLS connection carrying one HTTP/1.1 request (`Connection: close`), read until closed. */
function attempt(port: number, options: tls.ConnectionOptions, path: string): Promise<Attempt> {
  return new Promise((resolve) => {
    let text = '';
    let reused = false;
    let session: Buffer | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...options });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n`);
    });
    socket.on('session', (ticket: Buffer) => (session = ticket));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ reused, text, session }));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

async function expiredCount(metrics: Metrics): Promise<number> {
  const text = await metrics.render();
  const line = /^meshcar_tls_handshake_failures_total\{direction="inbound",reason="expired"\} (\d+)$/m.exec(text);
  return line ? Number(line[1]) : 0;
}

// Most of this file is waiting for certificates to expire (3 s each) and a session to age, on
// timers in this one process: the subtests each have their own inbound, app and PKI, so they run
// side by side rather than one wait after another.
t.jobs = 4;

t.test('a client certificate that expired after its first handshake cannot resume its TLS session', async (t) => {
  t.jobs = 2;
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    t.test(version, async (t) => {
      const s = await setup(t);
      const leaf = await s.pki.issue(FRONTEND_ID, { lifetimeMs: 3000 });
      const expiresAt = notAfterMs(leaf);
      const options = { ...clientTls(s.pki, leaf), minVersion: version, maxVersion: version };
      const tag = version.replace('TLSv', 'v');
      const seenBefore = s.appSeen.length;
      const countBefore = await expiredCount(s.metrics);
      const logBefore = s.logLines.length;

      const first = await attempt(s.port, options, `/first-${tag}`);
      t.match(first.text, /^HTTP\/1\.1 200/, 'the first, full handshake is accepted');
      t.notOk(first.reused);
      t.ok(first.session, 'the server gave a session ticket');
      // control: before the expiry a resumed session is accepted, so the refusal below is the expiry's doing
      const resumedEarly = await attempt(s.port, { ...options, session: first.session as Buffer }, `/early-${tag}`);
      t.ok(resumedEarly.reused, 'the session is resumed');
      t.match(resumedEarly.text, /^HTTP\/1\.1 200/, 'a resumed session with a valid certificate is accepted');
      t.ok(Date.now() < expiresAt, 'both requests were made before the certificate expired');

      await until(() => Date.now() >= expiresAt, 5000, 'the client certificate to expire');
      const late = await attempt(s.port, { ...options, session: (resumedEarly.session ?? first.session) as Buffer }, `/late-${tag}`);
      t.ok(late.reused, 'the expired client resumed its session (the handshake itself cannot refuse it)');
      t.equal(late.text, '', 'no HTTP answer: the connection is closed');
      t.same(s.appSeen.slice(seenBefore), [`GET /first-${tag}`, `GET /early-${tag}`], 'the app never sees the expired caller’s request');
      t.equal(await expiredCount(s.metrics), countBefore + 1, 'counted as meshcar_tls_handshake_failures_total{reason="expired"}');
      const logged = s.logLines.slice(logBefore).filter((l) => l.msg === 'inbound connection refused' && l.reason === 'expired' && l.resumed === true);
      t.equal(logged.length, 1, 'logged once, as a resumed session');
      t.match(String(logged[0]?.detail), /expired at .*\(resumed TLS session\)/);
    });
  }
});

t.test('an issuer that expires before the leaf: its expiry counts, on a resumed session too', async (t) => {
  const s = await setup(t);
  const leaf = await s.pki.issueUnderShortIssuer(FRONTEND_ID, 3000);
  const { issuerNotAfterMs } = leaf;
  t.ok(notAfterMs(leaf) > issuerNotAfterMs + 3_000_000, 'the leaf itself stays valid for an hour');
  const options = clientTls(s.pki, leaf);
  const countBefore = await expiredCount(s.metrics);

  const first = await attempt(s.port, options, '/issuer-first');
  t.match(first.text, /^HTTP\/1\.1 200/, 'accepted while the issuer is valid');
  // a session opened now is closed when the issuer expires, not when the leaf does
  const session = await h2Connect(s.port, options);
  const h2Closed = closedBy(session, issuerNotAfterMs + 3000);
  t.equal((await h2Request(session, { ':path': '/issuer-h2' })).status, 200);
  t.ok(Date.now() < issuerNotAfterMs, 'made before the issuer expired');

  await until(() => Date.now() >= issuerNotAfterMs, 5000, 'the issuer to expire');
  const late = await attempt(s.port, { ...options, session: first.session as Buffer }, '/issuer-late');
  t.ok(late.reused, 'the session is resumed (the ticket carries the leaf only)');
  t.equal(late.text, '', 'refused: the issuer seen at the full handshake has expired');
  t.equal(await expiredCount(s.metrics), countBefore + 1, 'counted as expired');
  const closedAt = await h2Closed;
  t.ok(closedAt !== undefined && closedAt >= issuerNotAfterMs && closedAt <= issuerNotAfterMs + 1500, `the HTTP/2 session is closed at the issuer's expiry (${closedAt === undefined ? 'still open' : `${closedAt - issuerNotAfterMs} ms after it`})`);
  session.destroy();
  t.same(s.appSeen, ['GET /issuer-first', 'GET /issuer-h2']);
});

t.test('connections are closed when the caller’s certificate expires: HTTP/1.1 keep-alive and HTTP/2', async (t) => {
  const s = await setup(t);
  const leaf = await s.pki.issue(FRONTEND_ID, { lifetimeMs: 3000 });
  const expiresAt = notAfterMs(leaf);

  // HTTP/1.1: one keep-alive request answered, then the connection is left open and idle
  const h1 = tls.connect({ host: '127.0.0.1', port: s.port, ALPNProtocols: ['http/1.1'], ...clientTls(s.pki, leaf) });
  h1.on('error', () => {});
  let h1Text = '';
  h1.setEncoding('utf8');
  h1.on('data', (chunk: string) => (h1Text += chunk));
  const h1Closed = closedBy(h1, expiresAt + 3000);
  await once(h1, 'secureConnect');
  h1.write('GET /keep-alive HTTP/1.1\r\nHost: orders\r\n\r\n');
  await until(() => h1Text.includes('answer to /keep-alive'), 3000, 'the HTTP/1.1 answer');
  t.match(h1Text, /^HTTP\/1\.1 200/);
  t.notMatch(h1Text, /connection: close/i, 'the connection is kept alive');

  // HTTP/2: one stream answered, the session stays open
  const session = await h2Connect(s.port, clientTls(s.pki, leaf));
  const h2Closed = closedBy(session, expiresAt + 3000);
  const res = await h2Request(session, { ':path': '/over-h2' });
  t.equal(res.status, 200);
  t.ok(Date.now() < expiresAt, 'both answered before the certificate expired');

  const [h1At, h2At] = await Promise.all([h1Closed, h2Closed]);
  for (const [name, at] of [['HTTP/1.1', h1At], ['HTTP/2', h2At]] as const) {
    if (at === undefined) {
      t.fail(`${name} is still open 3 s after the certificate expired`);
      continue;
    }
    t.ok(at >= expiresAt, `${name} stays open until the expiry (closed ${at - expiresAt} ms after it)`);
    t.ok(at <= expiresAt + 1500, `${name} is closed at the expiry (${at - expiresAt} ms after it)`);
  }
  h1.destroy();
  session.destroy();
  t.same(s.appSeen, ['GET /keep-alive', 'GET /over-h2']);
  t.equal(s.logLines.filter((l) => l.msg === 'inbound connection closed: the caller\'s certificate expired' && l.peer === FRONTEND_ID).length, 2, 'each close is logged');
  // the server's own 'close' may come a turn after the caller saw the connection go (the
  // meshcar codec ends the TLS socket before destroying it)
  await until(() => s.inbound.connections === 0, 1000, 'the server side of both connections to close');
  t.equal(s.inbound.connections, 0);
});

t.test('an HTTP/2 session gets GOAWAY at its maximum age and the stream in flight completes', async (t) => {
  const s = await setup(t, { ...DEFAULT_INBOUND_LIMITS, maxSessionAgeMs: 1000 });
  const leaf = await s.pki.issue(FRONTEND_ID);
  const session = await h2Connect(s.port, clientTls(s.pki, leaf));
  const openedAt = Date.now();
  const goaway = once(session, 'goaway').then(([code]) => ({ code: code as number, at: Date.now() }));
  const closed = once(session, 'close');

  t.equal((await h2Request(session, { ':path': '/fast' })).status, 200);
  const slow = h2Request(session, { ':path': '/slow' });
  await until(() => s.appSeen.includes('GET /slow'), 3000, 'the slow request to reach the app');

  const away = await Promise.race([goaway, new Promise<undefined>((r) => setTimeout(r, 3000, undefined).unref())]);
  if (!away) {
    t.fail('no GOAWAY within 3 s of a 1 s maximum age');
    slow.catch(() => {});
    s.releaseSlow();
    session.destroy();
    return;
  }
  t.equal(away.code, http2.constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY (NO_ERROR)');
  t.ok(away.at - openedAt >= 850, `not before the maximum age, less its jitter (${away.at - openedAt} ms)`);
  t.throws(() => session.request({ ':path': '/after' }), { code: 'ERR_HTTP2_GOAWAY_SESSION' }, 'no new streams on the session');

  s.releaseSlow();
  const answer = await slow.catch((err: Error) => err);
  if (answer instanceof Error) {
    t.fail(`the stream in flight completes (${answer.message})`);
    return;
  }
  t.equal(answer.status, 200, 'the stream in flight completes');
  t.equal(answer.body.toString(), 'slow answer');
  await closed;
  t.same(s.appSeen, ['GET /fast', 'GET /slow']);
  t.ok(s.logLines.some((l) => l.msg === 'inbound HTTP/2 session reached its maximum age: GOAWAY' && l.peer === FRONTEND_ID), 'logged (debug)');
});

t.test('config: inbound.limits.maxSessionAge', async (t) => {
  const parse = (text: string) => {
    const source = parseYamlSource('c.yaml', `listen: 127.0.0.1:0\napp: http://127.0.0.1:8080\n${text}`);
    const config = readInbound(source.root!, TD);
    return { config, issues: source.issues.map((i) => `${i.path}: ${i.message}`) };
  };
  t.equal(parse('limits: {maxResetsPer10s: 50}').config?.limits?.maxSessionAgeMs, undefined, 'absent: the listener applies 10 min');
  t.equal(parse('limits: {maxSessionAge: 90s}').config?.limits?.maxSessionAgeMs, 90_000);
  const zero = parse('limits: {maxSessionAge: 0s}');
  t.equal(zero.config, undefined);
  t.match(zero.issues, [/limits\.maxSessionAge: .*longer than zero/]);
  const bare = parse('limits: {maxSessionAge: 600}');
  t.equal(bare.config, undefined);
  t.match(bare.issues, [/limits\.maxSessionAge: .*give a unit/]);
});
