// What one client address may hold of the CA port (connection-guard.ts): at the per-address cap
// the address's own oldest idle connection makes room for its new one (one local process holding
// keep-alive connections on 127.0.0.1 shut out the host's other sidecars), and only when each
// has a request in flight is the new one closed as it arrives, so a client keeping the cap's
// worth busy leaves room for everyone else (here: a client bound to 127.0.0.2); at the CA's own cap, idle connections from several addresses give way, oldest
// first, to a client with a request (they shut every sidecar out); each refusal is counted and logged at warn, rate-limited. Every path, /healthz,
// /metrics and unknown ones too, is rate limited. A keep-alive connection that keeps asking is
// closed after its request or age bound, the last answer saying `Connection: close`. Real
// TLS against a real CA server in this process, with test-sized limits; every loop is bounded.

import t from 'tap';
import https from 'node:https';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { callCa, startTestCa } from '../helpers/ca.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { caToken } from '../../src/ca/commands.js';
import { waitFor } from '../helpers/mesh.js';

const PER_ADDRESS = 8;

/** A handshaken TLS connection from `localAddress`, or the reason there is none. */
function connectTls(port: number, localAddress = '127.0.0.1'): Promise<tls.TLSSocket | 'closed'> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, localAddress, servername: 'localhost', rejectUnauthorized: false });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('close', () => resolve('closed'));
  });
}

/** One GET on a held connection; resolves with the status line. */
async function healthz(socket: tls.TLSSocket): Promise<string> {
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString('latin1').split('\r\n')[0] as string;
}

/** `count` keep-alive connections from 127.0.0.1, each served a /healthz (closed at the test's end); undefined (a failure told) if one was refused. */
async function keptAlive(t: Tap.Test, port: number, count: number): Promise<tls.TLSSocket[] | undefined> {
  const held: tls.TLSSocket[] = [];
  t.teardown(() => held.forEach((socket) => socket.destroy()));
  for (let i = 0; i < count; i++) {
    const socket = await connectTls(port);
    if (socket === 'closed') {
      t.fail(`connection ${i + 1} of the cap was refused`);
      return undefined;
    }
    held.push(socket);
  }
  t.same(await Promise.all(held.map(healthz)), held.map(() => 'HTTP/1.1 200 OK'), "the cap's worth of keep-alive connections are served");
  return held;
}

/** A sign request with Expect: 100-continue whose body never comes; resolves with the CA's first answer line (its 100 Continue: the request is in flight). */
async function signInFlight(socket: tls.TLSSocket, token: string): Promise<string> {
  socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString('latin1').split('\r\n')[0] as string;
}

function get(port: number, path: string, options: https.RequestOptions = {}): Promise<{ status: number; connection: string | undefined; localPort: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername: 'localhost', rejectUnauthorized: false, ...options }, (res) => {
      const localPort = res.socket.localPort ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, localPort, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
  });
}

t.test('every refusal reason is exported at 0 from the start, before any refusal', async (t) => {
  // a series born at 1 has no increase() to Prometheus: an alert on the first refusal needs it at 0
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const text = await ca.metrics.render();
  for (const reason of ['max_connections', 'idle_evicted', 'per_address_limit']) {
    t.match(text, new RegExp(`^meshcar_ca_connections_refused_total\\{reason="${reason}"\\} 0$`, 'm'), `${reason} at 0`);
  }
});

t.test('one address holding its cap of busy connections does not shut others out', async (t) => {
  // the whole CA takes PER_ADDRESS + 2: without a per-address cap the surplus below fills it
  const ca = await startTestCa({ rateLimit: { perSecond: 100, burst: 100 } }, undefined, { maxConnectionsPerAddress: PER_ADDRESS, maxConnections: PER_ADDRESS + 2 });
  t.teardown(() => ca.close());
  const port = ca.server.port;

  // keep-alive and busy: each asks for /healthz (the idle sweep sees bytes move), then sends a
  // sign request whose body never comes (in flight once the CA has said 100 Continue to it)
  const held = await keptAlive(t, port, PER_ADDRESS);
  if (held === undefined) return;
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  t.same(await Promise.all(held.map((socket) => signInFlight(socket, token))), held.map(() => 'HTTP/1.1 100 Continue'), 'and each holds a sign request in flight');

  const surplus = await Promise.all(Array.from({ length: 4 }, () => connectTls(port)));
  t.same(
    surplus.map((s) => (s === 'closed' ? 'closed' : 'open')),
    ['closed', 'closed', 'closed', 'closed'],
    `connections beyond ${PER_ADDRESS} from one address are closed before the handshake`,
  );
  t.teardown(() => surplus.forEach((s) => s !== 'closed' && s.destroy()));
  t.notOk(held.some((socket) => socket.destroyed), 'while the first ones are kept');

  const other = await get(port, '/v1/bundle', { localAddress: '127.0.0.2', agent: false }).catch((err: Error) => ({ status: err.message, body: '' }));
  t.equal(other.status, 200, 'a client from another address is served meanwhile');
  t.match(other.body, /BEGIN CERTIFICATE/);

  const text = await ca.metrics.render();
  t.match(text, /^meshcar_ca_connections_refused_total\{reason="per_address_limit"\} 4$/m, 'each refusal is counted');
  t.equal((await promtoolCheck(text)).code, 0, 'the metrics page stays promtool-clean');
  const warns = ca.logLines.filter((line) => line.level === 40 && String(line.msg).startsWith('CA connection refused'));
  t.equal(warns.length, 1, 'and logged at warn, one line per address per window');
  t.match(warns[0], { remoteAddress: '127.0.0.1', reason: 'per_address_limit' });

  // the cap counts open connections: once some close, the address may open new ones
  held.pop()?.destroy();
  let again: tls.TLSSocket | 'closed' = 'closed';
  for (let i = 0; i < 50 && again === 'closed'; i++) again = await connectTls(port);
  t.not(again, 'closed', 'a connection closed frees its place');
  if (again !== 'closed') again.destroy();
});

t.test('at its cap, an address\'s own oldest idle connection makes room for its new one: a local process holding keep-alive connections does not shut out the host\'s renewals', async (t) => {
  const ca = await startTestCa({}, undefined, { maxConnectionsPerAddress: PER_ADDRESS, maxConnections: 4 * PER_ADDRESS });
  t.teardown(() => ca.close());
  const port = ca.server.port;
  // as the hostile process does: the cap's worth of keep-alive connections, each asking /healthz
  // now and then (idle between), from 127.0.0.1, which every process of the host shares
  const held = await keptAlive(t, port, PER_ADDRESS);
  if (held === undefined) return;

  const renewal = await get(port, '/v1/bundle', { agent: false }).catch((err: Error) => ({ status: err.message, body: '' }));
  t.equal(renewal.status, 200, 'a new connection from the same address is served');
  t.match(renewal.body, /BEGIN CERTIFICATE/);
  await waitFor(async () => held[0]!.destroyed, 5_000, 'the oldest idle one of that address closed for it');
  t.notOk(held.slice(1).some((socket) => socket.destroyed), 'the others are kept');

  const text = await ca.metrics.render();
  t.match(text, /^meshcar_ca_connections_refused_total\{reason="idle_evicted"\} 1$/m, 'counted as an idle connection closed for a new one');
  t.match(text, /^meshcar_ca_connections_refused_total\{reason="per_address_limit"\} 0$/m, 'no connection refused');
  const warns = ca.logLines.filter((line) => line.level === 40 && String(line.msg).startsWith('CA connection refused'));
  t.match(warns, [{ remoteAddress: '127.0.0.1', reason: 'idle_evicted', msg: /127\.0\.0\.1 had 8 connections open \(at most 8 per address\): its oldest with no request in flight was closed for its new one/ }], 'logged at warn, saying why');
});

t.test('connections that do nothing, from several addresses, at the CA\'s cap: the oldest makes room for a client with a request', async (t) => {
  // four addresses, two each: well within the per-address cap, together the whole CA's
  const ca = await startTestCa({}, undefined, { maxConnectionsPerAddress: PER_ADDRESS, maxConnections: 8 });
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const idle: tls.TLSSocket[] = [];
  t.teardown(() => idle.forEach((socket) => socket.destroy()));
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    for (let i = 0; i < 2; i++) {
      const socket = await connectTls(port, from);
      if (socket === 'closed') return t.fail(`an idle connection from ${from} within the caps was refused`);
      idle.push(socket);
    }
  }
  const bundle = await get(port, '/v1/bundle', { agent: false }).catch((err: Error) => ({ status: err.message, body: '' }));
  t.equal(bundle.status, 200, 'a client arriving at the cap is served');
  for (let i = 0; i < 100 && !idle[0]!.destroyed; i++) await sleep(10);
  t.ok(idle[0]!.destroyed, 'the oldest idle connection was closed for it');
  t.notOk(idle[7]!.destroyed, 'the youngest is still open');
  t.match(await ca.metrics.render(), /^meshcar_ca_connections_refused_total\{reason="idle_evicted"\} 1$/m, 'counted as idle_evicted');
});

t.test('/healthz, /metrics and unknown paths are rate limited too', async (t) => {
  const ca = await startTestCa({ rateLimit: { perSecond: 0.05, burst: 3 } });
  t.teardown(() => ca.close());
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await get(ca.server.port, '/no-such-path', { agent: false })).status);
  t.same(statuses, [404, 404, 404, 429, 429], 'unknown paths spend the client\'s tokens');

  // probes have a bucket of their own (50, then 10/s): a flood of them gets 429 as JSON
  let refused: { status: number; body: string } | undefined;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const firstProbe = await get(ca.server.port, '/healthz', { agent });
  t.equal(firstProbe.status, 200, 'probes are answered while the signing bucket is empty: a bucket of their own');
  for (let i = 0; i < 200 && refused === undefined; i++) {
    const res = await get(ca.server.port, i % 2 ? '/healthz' : '/metrics', { agent });
    if (res.status !== 200) refused = res;
  }
  t.equal(refused?.status, 429, '/healthz and /metrics are refused once their bucket is empty');
  t.match(JSON.parse(refused?.body ?? '{}'), { error: 'rate_limited' });
});

t.test('a busy keep-alive connection is closed after its request bound', async (t) => {
  const ca = await startTestCa({}, undefined, { maxRequestsPerConnection: 5 });
  t.teardown(() => ca.close());
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await get(ca.server.port, '/healthz', { agent }));
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
  t.same(answers.slice(0, 5).map((a) => a.connection), ['keep-alive', 'keep-alive', 'keep-alive', 'keep-alive', 'close'], 'the 5th answer says Connection: close');
  t.equal(new Set(answers.slice(0, 5).map((a) => a.localPort)).size, 1, 'the first 5 share one connection');
  t.not(answers[5]?.localPort, answers[4]?.localPort, 'the 6th comes on a new one');
});

// the age ran on the wall clock: stepped back an hour (NTP correcting a host that ran ahead),
// a connection was never old enough until the hour had passed; it counts running time now
for (const stepBackMs of [0, 3_600_000]) {
  t.test(`a busy keep-alive connection is closed after its age bound${stepBackMs > 0 ? ', the wall clock stepped back an hour' : ''}`, async (t) => {
    const { movableClock } = await import('../helpers/movable-clock.js');
    const AGE_MS = 1_000;
    const ca = await startTestCa({}, undefined, { maxConnectionAgeMs: AGE_MS });
    t.teardown(() => ca.close());
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());

    // one connection, asking every 100 ms (well inside the keep-alive timeout) until told to close
    const first = await get(ca.server.port, '/healthz', { agent });
    const clock = movableClock();
    t.teardown(() => clock.restore());
    clock.offset.ms = -stepBackMs;
    const opened = performance.now();
    const ports = new Set([first.localPort]);
    let last = first;
    for (let i = 0; i < 100 && last.connection !== 'close' && performance.now() - opened < 10_000; i++) {
      await sleep(100);
      last = await get(ca.server.port, '/healthz', { agent });
      ports.add(last.localPort);
    }
    clock.restore();
    t.equal(last.connection, 'close', 'an answer says Connection: close');
    t.equal(ports.size, 1, 'on the connection that asked all along');
    const took = performance.now() - opened;
    t.ok(took >= AGE_MS - 200 && took < 5_000, `once the connection is older than ${AGE_MS} ms (${Math.round(took)} ms)`);
    const next = await get(ca.server.port, '/healthz', { agent });
    t.not(next.localPort, first.localPort, 'the next request comes on a new connection');
  });
}
