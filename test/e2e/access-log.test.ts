// The access log: one JSON line per request on stdout, with the route template, status,
// duration and request id; off with log.access: false; never a key, certificate or token.

import t from 'tap';
import { startSidecar, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);

/**
 * Resolves once everything the sidecar logged before this call has reached us: it asks for a
 * reload (of an unchanged file, so nothing changes) and waits for its outcome, which the
 * sidecar writes to the same stdout after any earlier line.
 */
async function logFlushed(sidecar: RunningSidecar): Promise<void> {
  const seen = sidecar.process.lines.length;
  sidecar.process.child.kill('SIGHUP');
  await sidecar.process.waitFor((line) => sidecar.process.lines.indexOf(line) >= seen && line.component === 'reload' && line.msg === 'config reloaded');
}

t.test('one line per request in each direction, and none when turned off', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, access: true });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', routes: ['/bytes/{size}'] }], access: false });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  for (let i = 0; i < 3; i++) {
    const res = await request(frontend.outboundPort, { path: `/bytes/${100 + i}?secret=no`, headers: { host: 'orders', 'x-request-id': `access-${i}` } });
    t.equal(res.status, 200);
  }
  // the last request's line, then anything either sidecar wrote before a later marker line
  await orders.process.waitFor((l) => l.component === 'access' && l.requestId === 'access-2');
  await Promise.all([logFlushed(orders), logFlushed(frontend)]);
  const lines = orders.process.lines.filter((l) => l.component === 'access');
  t.equal(lines.length, 3, 'three lines on the inbound sidecar');
  const line = lines[0] as Record<string, unknown>;
  t.match(line, { direction: 'inbound', peer: 'frontend', method: 'GET', route: '/bytes/{id}', path: '/bytes/100', status: 200, requestId: 'access-0' });
  t.type(line.durationMs, 'number');
  t.type(line.time, 'string');
  t.notMatch(JSON.stringify(lines), /secret=no/, 'no query string');
  t.equal(frontend.process.lines.filter((l) => l.component === 'access').length, 0, 'log.access: false writes none');
  const everything = JSON.stringify(orders.process.lines) + JSON.stringify(frontend.process.lines);
  t.notMatch(everything, /BEGIN [A-Z ]*(CERTIFICATE|PRIVATE KEY)/, 'no certificate or key in any log line');
  t.notMatch(everything, /eyJ[\w-]+\.eyJ/, 'no join token in any log line');
});

t.test('bytesIn and bytesOut: the body bytes each way, on both sidecars', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, access: true });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], access: true });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const upload = await request(frontend.outboundPort, { method: 'POST', path: '/sink', body: Buffer.alloc(70_000, 1), headers: { host: 'orders', 'x-request-id': 'bytes-up' } });
  t.equal(upload.body.toString(), '{"bytes":70000}');
  const download = await request(frontend.outboundPort, { path: '/bytes/150000', headers: { host: 'orders', 'x-request-id': 'bytes-down' } });
  t.equal(download.body.length, 150_000);
  for (const sidecar of [orders, frontend]) {
    const up = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'bytes-up');
    const down = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'bytes-down');
    t.match(up, { bytesIn: 70_000, bytesOut: 15 }, `${String(up.direction)}: the upload and the app's 15-byte answer`);
    t.match(down, { bytesIn: 0, bytesOut: 150_000 }, `${String(down.direction)}: the download`);
  }
});

// bytesOut is what reached the caller, so the sidecars' own error answers count too: the
// inbound's 403 (its JSON body, on both sidecars' lines) and the outbound's no_route. They were
// written 0 while an app's error body counted, so an access log summed for bandwidth or read
// per request said the caller got nothing. A HEAD is answered with no body: 0.
t.test('bytesOut: the sidecars own error answers count as what the caller got', async (t) => {
  const authorize = ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]', '      paths: [/bytes/*]'].join('\n');
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}`, authorize }, access: true });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], access: true });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const denied = await request(frontend.outboundPort, { path: '/admin', headers: { host: 'orders', 'x-request-id': 'own-403' } });
  t.equal(denied.headers['x-meshcar-error'], 'forbidden');
  const nowhere = await request(frontend.outboundPort, { path: '/x', headers: { host: 'nowhere', 'x-request-id': 'own-404' } });
  t.equal(nowhere.headers['x-meshcar-error'], 'no_route');
  const head = await request(frontend.outboundPort, { method: 'HEAD', path: '/admin', headers: { host: 'orders', 'x-request-id': 'own-head' } });
  t.equal(head.status, 403);
  for (const sidecar of [orders, frontend]) {
    const line = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'own-403');
    t.match(line, { status: 403, error: 'forbidden', bytesOut: denied.body.length }, `${String(line.direction)}: the 403's ${denied.body.length} bytes`);
    const headLine = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'own-head');
    t.match(headLine, { status: 403, bytesOut: 0 }, `${String(headLine.direction)}: a HEAD's 403 has no body`);
  }
  const noRoute = await frontend.process.waitFor((l) => l.component === 'access' && l.requestId === 'own-404');
  t.match(noRoute, { status: 404, error: 'no_route', bytesOut: nowhere.body.length }, `the no_route answer's ${nowhere.body.length} bytes`);
  t.ok(denied.body.length > 0 && nowhere.body.length > 0, 'both answers have a body');
});

// A retried request's line says how many retries it took (as Envoy's
// %UPSTREAM_REQUEST_ATTEMPT_COUNT%): its endpoint is the one that answered last, and without
// the count a request that failed on one endpoint and was answered by another read as one
// plain answer (meshcar_retries_total counted it, with no request to tie it to).
t.test('a retried request: its line says how many retries it took; one that was not has none', async (t) => {
  // an orders sidecar whose app is gone answers 503 upstream_unavailable: the frontend retries the GET on the other
  const broken = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:1' } });
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${broken.inboundPort}`, `127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], access: true });
  t.teardown(async () => {
    await frontend.stop('SIGKILL');
    await orders.stop();
    await broken.stop();
  });
  const ids: string[] = [];
  // sent until one went to the broken endpoint first (power of two choices: within a few)
  for (let i = 0; i < 20; i++) {
    const res = await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders', 'x-request-id': `retried-${i}` } });
    t.equal(res.status, 200, `request ${i} answered`);
    ids.push(`retried-${i}`);
    const line = await frontend.process.waitFor((l) => l.component === 'access' && l.requestId === `retried-${i}`);
    if (line.retries !== undefined) break;
  }
  const lines = frontend.process.lines.filter((l) => l.component === 'access' && ids.includes(String(l.requestId)));
  const retried = lines.filter((l) => l.retries !== undefined);
  t.equal(retried.length, 1, 'one line says it was retried');
  t.match(retried[0], { status: 200, retries: 1, endpoint: `127.0.0.1:${orders.inboundPort}` }, 'once, answered by the working endpoint');
  t.ok(lines.filter((l) => l.retries === undefined).every((l) => l.endpoint === `127.0.0.1:${orders.inboundPort}`), 'the others went to the working endpoint at once and have no count');
});
