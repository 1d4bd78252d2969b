// The admin API of a running sidecar: liveness, readiness, identity, effective config, the
// API inventory, metrics in both formats, and JSON errors for the rest; and the refusal of
// what a web page could send (a rebound Host name, a cross-origin POST).

import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

let ca: MeshCa;
let app: TestApp;
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startEchoApp();
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` } });
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }] });
  for (const id of [1, 2, 3]) await request(frontend.outboundPort, { path: `/headers?id=${id}`, headers: { host: 'orders' } });
  await request(frontend.outboundPort, { path: '/status/204', headers: { host: 'orders' } });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
  await app?.close();
});

function admin(port: number, path: string, options: { method?: string; accept?: string } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.accept ? { accept: options.accept } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('/healthz and /ready', async (t) => {
  t.same(JSON.parse((await admin(orders.adminPort, '/healthz')).body), { status: 'ok' }, 'the same word as the CA');
  const ready = await admin(orders.adminPort, '/ready');
  t.equal(ready.status, 200);
});

t.test('/identity', async (t) => {
  const identity = JSON.parse((await admin(orders.adminPort, '/identity')).body) as Record<string, string>;
  t.equal(identity.spiffeId, 'spiffe://mesh.local/svc/orders');
  t.match(identity.serial, /^[0-9a-f]{16,}$/);
  t.ok(Date.parse(identity.notBefore as string) < Date.now());
  t.ok(Date.parse(identity.notAfter as string) > Date.now());
  t.ok(Date.parse(identity.nextRenewal as string) > Date.now(), 'next renewal in the future');
  t.ok(Date.parse(identity.nextRenewal as string) < Date.parse(identity.notAfter as string), 'and before expiry');
});

t.test('/config: the effective config, no secrets', async (t) => {
  const res = await admin(orders.adminPort, '/config');
  const config = JSON.parse(res.body) as { service: string; inbound: { timeout: string; idleTimeout: string; limits: Record<string, unknown> }; identity: { ca: { token: string } } };
  t.equal(config.service, 'orders');
  t.equal(config.inbound.timeout, '5s', 'YAML key names and units');
  t.equal(config.inbound.idleTimeout, '5m', 'defaults shown');
  t.same(config.inbound.limits, { maxConcurrentStreams: 250, maxHeaderListSize: '16KiB', maxResetsPer10s: 200, maxSessionAge: '10m', maxConnectionsPerCaller: 1024, maxHandshakesPerAddress: 256, maxHandshakes: 1024, maxBufferedPerCaller: '64MiB', maxPipelined: 32, maxAppConnections: 256, maxAppWaiting: 1000 });
  t.notMatch(res.body, /Ms"|"file"|"spiffeId"/, 'no internal names');
  t.match(config.identity.ca.token, /orders\.token$/, 'the token file path, never its content');
  t.notMatch(res.body, /eyJ|PRIVATE KEY/);
});

t.test('/config pasted into a .yaml file passes meshcar check (JSON is YAML)', async (t) => {
  const dir = t.testdir();
  // orders has only an inbound, frontend only an outbound: the absent side, the token-less or
  // rule-less settings must be left out, not written as null or []
  for (const [name, sidecar] of [['orders', orders], ['frontend', frontend]] as const) {
    const body = (await admin(sidecar.adminPort, '/config')).body;
    t.notMatch(body, /null|\[\]/, `${name}: no null or empty list`);
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, body);
    const checked = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'check', '--config', file], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, out: stdout + stderr })),
    );
    t.equal(checked.code, 0, `${name}: ${checked.out}`);
  }
});

t.test("the 'listening' log lines give the address in one shape, host:port", async (t) => {
  const line = (sidecar: RunningSidecar, msg: string) => sidecar.process.lines.find((l) => l.msg === msg);
  t.match(line(orders, 'inbound listening'), { address: `127.0.0.1:${orders.inboundPort}` });
  t.match(line(frontend, 'outbound listening'), { address: `127.0.0.1:${frontend.outboundPort}`, upstreams: ['orders'] });
});

t.test('/endpoints: the API inventory', async (t) => {
  const { endpoints } = JSON.parse((await admin(frontend.adminPort, '/endpoints')).body) as { endpoints: Array<Record<string, unknown>> };
  const headers = endpoints.find((e) => e.route === '/headers');
  t.match(headers, { direction: 'outbound', peer: 'orders', method: 'GET', count: 3, errors: 0 });
  t.ok(Date.parse(String(headers?.lastSeen)) > Date.now() - 60_000);
  t.ok(endpoints.some((e) => e.route === '/status/{id}'), 'learned template');
  const inbound = JSON.parse((await admin(orders.adminPort, '/endpoints')).body) as { endpoints: Array<Record<string, unknown>> };
  t.ok(inbound.endpoints.some((e) => e.direction === 'inbound' && e.peer === 'frontend' && e.route === '/headers'));
});

t.test('/metrics in Prometheus text and OpenMetrics', async (t) => {
  const text = await admin(orders.adminPort, '/metrics');
  t.match(text.type, /text\/plain/);
  t.match(text.body, /meshcar_requests_total\{direction="inbound",peer="frontend",method="GET",route="\/headers",code="200"\} 3/);
  const open = await admin(orders.adminPort, '/metrics', { accept: 'application/openmetrics-text;version=1.0.0' });
  t.match(open.type, /application\/openmetrics-text/);
  t.match(open.body, /# EOF/);
  const again = await admin(orders.adminPort, '/metrics');
  t.match(again.body, /^meshcar_requests_total\{/m, 'plain text unchanged after an OpenMetrics scrape');
  t.notMatch(again.body, /meshcar_ca_/, 'the CA families are the CA server\'s, not a sidecar\'s');
});

t.test('/metrics: OpenMetrics by the Accept weights; the page varies on Accept', async (t) => {
  const cases: Array<[string, RegExp]> = [
    // Prometheus 2.x's scrape header
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', /application\/openmetrics-text/],
    ['application/openmetrics-text;q=0', /^text\/plain/],
    ['text/plain, application/openmetrics-text;q=0.5', /^text\/plain/],
    ['application/openmetrics-text; q=0.9, text/plain; q=0.3', /application\/openmetrics-text/],
    ['*/*', /^text\/plain/],
  ];
  for (const [accept, type] of cases) t.match((await admin(orders.adminPort, '/metrics', { accept })).type, type, `Accept: ${accept}`);
  const answer = await fetch(`http://127.0.0.1:${orders.adminPort}/metrics`);
  await answer.arrayBuffer();
  t.equal(answer.headers.get('vary'), 'accept, accept-encoding', 'Vary names both fields the page depends on');
});

t.test('/metrics gzip-encoded when the scraper accepts it, the same text decoded', async (t) => {
  const fetchMetrics = (encoding: string | undefined) =>
    new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: orders.adminPort, path: '/metrics', headers: encoding ? { 'accept-encoding': encoding } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
  // Prometheus' own header; nothing else happens between the scrapes, so the pages match
  const zipped = await fetchMetrics('gzip');
  const plain = await fetchMetrics(undefined);
  const refused = await fetchMetrics('gzip;q=0, identity');
  t.equal(zipped.headers['content-encoding'], 'gzip');
  t.equal(Number(zipped.headers['content-length']), zipped.body.length);
  t.ok(zipped.body.length < plain.body.length / 3, `compressed ${plain.body.length} → ${zipped.body.length} bytes`);
  const text = gunzipSync(zipped.body).toString('utf8');
  t.equal(text.replace(/^(process_|nodejs_).*\n/gm, ''), plain.body.toString('utf8').replace(/^(process_|nodejs_).*\n/gm, ''), 'the same text once decoded (process gauges move between scrapes)');
  t.equal(plain.headers['content-encoding'], undefined);
  t.equal(refused.headers['content-encoding'], undefined, 'gzip;q=0 is a refusal');
  const promtool = await new Promise<{ code: number; output: string }>((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }));
    child.stdin?.end(text);
  });
  t.equal(promtool.code, 0, `promtool check metrics passes the decoded page: ${promtool.output}`);
});

t.test('unknown paths and methods get JSON errors', async (t) => {
  const missing = await admin(orders.adminPort, '/nope');
  t.equal(missing.status, 404);
  t.equal(JSON.parse(missing.body).error, 'not_found');
  t.match(JSON.parse(missing.body).message, /\/healthz, \/ready, \/identity, \/config, \/metrics, \/endpoints.*POST \/reload/, 'the hint lists every endpoint');
  const post = await admin(orders.adminPort, '/ready', { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(JSON.parse(post.body).error, 'method_not_allowed');
  const refused = await fetch(`http://127.0.0.1:${orders.adminPort}/ready`, { method: 'POST' });
  await refused.arrayBuffer();
  t.equal(refused.headers.get('allow'), 'GET, HEAD', 'a 405 names the methods allowed (RFC 9110: it must)');
  // a path that does not exist is a 404 whatever the method (as Envoy), not "use GET /relaod"
  for (const method of ['POST', 'DELETE', 'PUT']) {
    const typo = await fetch(`http://127.0.0.1:${orders.adminPort}/relaod`, { method });
    const body = JSON.parse(await typo.text()) as { error: string; message: string };
    t.equal(typo.status, 404, `${method} /relaod: 404`);
    t.equal(body.error, 'not_found');
    t.match(body.message, /^no admin endpoint \/relaod; try .*POST \/reload/, 'with the hint a GET gets');
    t.equal(typo.headers.get('allow'), null, 'and no Allow header');
  }
  t.equal((await admin(orders.adminPort, '/endpoints', { method: 'POST' })).status, 405, 'a view that exists, asked with POST: 405 as before');
});

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with exactly the Host and Origin given (none when undefined), as a browser or curl would send it. */
function rawAdmin(port: number, options: { method?: string; path?: string; host?: string; origin?: string }): Promise<RawAnswer> {
  const headers: Record<string, string> = {};
  if (options.host !== undefined) headers.host = options.host;
  if (options.origin !== undefined) headers.origin = options.origin;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/healthz', headers, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/1.0 request with no Host header at all, over a raw socket. */
function http10WithoutHost(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.0\r\n\r\n`));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

const silent = pino({ level: 'silent' });

t.test('Host and Origin checks (admin server with admin.hosts: [admin.mesh.test])', async (t) => {
  let reloads = 0;
  const state: AdminState = {
    ready: () => true,
    draining: () => false,
    identity: () => ({ spiffeId: 'spiffe://mesh.local/svc/x' }),
    config: () => ({ secret: 'shown only to the right Host' }),
    metrics: async () => ({ contentType: 'text/plain', body: 'm 1\n' }),
    reload: async () => {
      reloads++;
      return { applied: [], restartRequired: [] };
    },
  };
  const server = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, silent, { hosts: ['admin.mesh.test'] });
  t.teardown(() => server.close());
  const port = server.port;

  const refused = (t: Test, res: RawAnswer, what: string) => {
    t.equal(res.status, 403, what);
    t.equal(res.headers['x-meshcar-error'], 'forbidden');
    t.match(res.headers['content-type'], /application\/json/);
    t.equal(JSON.parse(res.body).error, 'forbidden');
    t.notMatch(res.body, /shown only/, 'nothing of the answer leaks');
  };

  t.test('a name other than localhost or admin.hosts is refused (DNS rebinding)', async (t) => {
    refused(t, await rawAdmin(port, { path: '/config', host: 'evil.example' }), 'evil.example');
    refused(t, await rawAdmin(port, { path: '/config', host: `evil.example:${port}` }), 'evil.example with port');
    refused(t, await rawAdmin(port, { path: '/identity', host: `admin.mesh.test.evil.example:${port}` }), 'a listed name as a prefix of another');
    refused(t, await rawAdmin(port, { path: '/metrics', host: 'localhost.evil.example' }), 'localhost as a prefix');
    refused(t, await rawAdmin(port, { path: '/config', host: '::1' }), 'IPv6 without brackets is not a Host');
    refused(t, await rawAdmin(port, { path: '/config', host: 'localhost:99999' }), 'a port past 65535 is no port');
    refused(t, await rawAdmin(port, { path: '/config', host: '[::1]:65536' }), 'nor for an IPv6 literal');
  });

  t.test('localhost, IP literals and listed names pass', async (t) => {
    for (const host of [`localhost:${port}`, 'localhost', 'LocalHost.', `127.0.0.1:${port}`, `[::1]:${port}`, '[::1]', '10.1.2.3:15000', 'localhost:65535', `admin.mesh.test:${port}`, 'ADMIN.mesh.test']) {
      const res = await rawAdmin(port, { path: '/config', host });
      t.equal(res.status, 200, host);
      t.match(res.body, /shown only/);
    }
  });

  t.test('HTTP/1.0 without Host passes: a browser always sends Host', async (t) => {
    const answer = await http10WithoutHost(port, '/config');
    t.match(answer, /^HTTP\/1\.1 200 /);
    t.match(answer, /shown only/);
  });

  t.test('a POST from another origin is refused and reloads nothing', async (t) => {
    const before = reloads;
    refused(t, await rawAdmin(port, { method: 'POST', path: '/reload', host: `127.0.0.1:${port}`, origin: 'http://evil.example' }), 'cross-site POST by IP');
    refused(t, await rawAdmin(port, { method: 'POST', path: '/reload', host: `localhost:${port}`, origin: 'null' }), 'opaque origin (sandboxed page)');
    refused(t, await rawAdmin(port, { method: 'POST', path: '/reload', host: `localhost:${port}`, origin: `http://localhost:${port + 1}` }), 'another port is another origin');
    refused(t, await rawAdmin(port, { method: 'POST', path: '/reload', host: `localhost:${port}`, origin: `https://localhost:${port}` }), 'another scheme is another origin');
    t.equal(reloads, before, 'no reload happened');
  });

  t.test('a POST without Origin (curl) or from the admin origin itself reloads', async (t) => {
    const before = reloads;
    t.equal((await rawAdmin(port, { method: 'POST', path: '/reload', host: `127.0.0.1:${port}` })).status, 200, 'curl -X POST http://127.0.0.1:PORT/reload');
    t.equal((await rawAdmin(port, { method: 'POST', path: '/reload', host: `localhost:${port}`, origin: `http://localhost:${port}` })).status, 200, 'same origin');
    t.equal(reloads, before + 2);
  });

  t.test('setHosts replaces the listed names', async (t) => {
    t.teardown(() => server.setHosts(['admin.mesh.test']));
    server.setHosts(['other.mesh.test']);
    refused(t, await rawAdmin(port, { host: 'admin.mesh.test' }), 'no longer listed');
    t.equal((await rawAdmin(port, { host: 'other.mesh.test' })).status, 200);
    t.equal((await rawAdmin(port, { host: 'localhost' })).status, 200, 'localhost always passes');
  });
});

t.test('the running sidecar refuses a rebound Host and a cross-origin reload', async (t) => {
  const reloadCount = async () => Number(/^meshcar_config_reloads_total\{result="success"\} (\d+)/m.exec((await admin(orders.adminPort, '/metrics')).body)?.[1]);
  const before = await reloadCount();
  t.ok(Number.isInteger(before), 'the reload counter is exported');
  const rebound = await rawAdmin(orders.adminPort, { path: '/config', host: `evil.example:${orders.adminPort}` });
  t.equal(rebound.status, 403);
  t.equal(JSON.parse(rebound.body).error, 'forbidden');
  const crossSite = await rawAdmin(orders.adminPort, { method: 'POST', path: '/reload', host: `127.0.0.1:${orders.adminPort}`, origin: 'http://evil.example' });
  t.equal(crossSite.status, 403);
  t.equal(await reloadCount(), before, 'no reload happened');
  const curl = await rawAdmin(orders.adminPort, { method: 'POST', path: '/reload', host: `127.0.0.1:${orders.adminPort}` });
  t.equal(curl.status, 200, 'curl -X POST http://127.0.0.1:PORT/reload');
  t.equal(await reloadCount(), before + 1);
});

t.test('admin.hosts from the config file, replaced by a reload', async (t) => {
  const svid = await ca.issue('web');
  const dir = t.testdir();
  const file = join(dir, 'web.yaml');
  const yaml = (hosts: string) =>
    [
      'service: web',
      'trustDomain: mesh.local',
      'identity:',
      `  files: {cert: ${join(svid.dir, 'svid.crt')}, key: ${join(svid.dir, 'svid.key')}, bundle: ${join(svid.dir, 'bundle.pem')}}`,
      'outbound:',
      '  listen: 127.0.0.1:0',
      '  upstreams:',
      '    api: {endpoints: [127.0.0.1:1], identity: spiffe://mesh.local/svc/api}',
      'admin:',
      '  listen: 127.0.0.1:0',
      hosts,
      'log: {level: silent, access: false}',
      '',
    ].join('\n');
  await writeFile(file, yaml('  hosts: [Admin.Mesh.Test]'));
  const sidecar = new Sidecar(await loadSidecarConfig(file), silent);
  t.teardown(() => sidecar.stop());
  const { admin: address } = await sidecar.start();
  t.equal((await rawAdmin(address.port, { path: '/ready', host: `admin.mesh.test:${address.port}` })).status, 200, 'a listed name passes');
  t.equal((await rawAdmin(address.port, { path: '/ready', host: `evil.example:${address.port}` })).status, 403, 'an unlisted one does not');

  await writeFile(file, yaml('  hosts: [metrics.mesh.test]'));
  const result = await sidecar.reload();
  t.same(result, { ok: true, applied: ['admin.hosts'], restartRequired: [] }, 'admin.hosts is applied live');
  t.equal((await rawAdmin(address.port, { path: '/ready', host: `admin.mesh.test:${address.port}` })).status, 403, 'the old name no longer passes');
  t.equal((await rawAdmin(address.port, { path: '/ready', host: `metrics.mesh.test:${address.port}` })).status, 200, 'the new one does');
});
