// The access log does not depend on log.level: with log.access: true every request is logged,
// whatever level the rest of the log is at (a sidecar at warn kept none before).

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { startMeshCa, startSidecar, httpPost, type MeshCa } from '../helpers/mesh.js';
import http2 from 'node:http2';
import { request, startEchoApp } from '../helpers/apps.js';
import { MAX_LOGGED_METHOD, MAX_LOGGED_PATH } from '../../src/metrics/access-log.js';

let ca: MeshCa;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
});
t.teardown(() => ca?.stop());

/** One bodiless request on `session`, read to its end (or its error). */
function requestToItsEnd(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = session.request(headers, { endStream: true });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}

t.test('log: {level: warn, access: true}: access lines appear, other info lines do not', async (t) => {
  const sidecar = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/orders' }], access: false });
  t.teardown(() => sidecar.stop('SIGKILL'));
  // live, as an operator turns it on: level warn and the access log in one reload
  const text = await readFile(sidecar.configFile, 'utf8');
  await writeFile(sidecar.configFile, text.replace('  level: info\n', '  level: warn\n').replace('  access: false\n', '  access: true\n'));
  const reloaded = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reloaded.status, 200, reloaded.body);
  const seen = sidecar.process.lines.length;
  for (let i = 0; i < 3; i++) {
    const res = await request(sidecar.outboundPort, { path: `/orders/${i}`, headers: { host: 'nowhere', 'x-request-id': `warn-${i}` } });
    t.ok(res.status >= 400, `answered ${res.status}`);
  }
  const line = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'warn-2', 5000);
  t.match(line, { direction: 'outbound', method: 'GET', path: '/orders/2', level: 30 });
  const later = sidecar.process.lines.slice(seen);
  t.equal(later.filter((l) => l.component === 'access').length, 3, 'one access line per request');
  t.same(later.filter((l) => l.component !== 'access' && Number(l.level) < 40), [], 'no other info line at level warn');
});

t.test('access on at level info, then a reload of log.level alone to warn: access lines go on', async (t) => {
  const sidecar = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/orders' }], access: true });
  t.teardown(() => sidecar.stop('SIGKILL'));
  // the access logger made at level info, the root's level then: pino gives a child its own
  // level only when it differs from its parent's, so it followed the root down to warn
  const text = await readFile(sidecar.configFile, 'utf8');
  t.match(text, /  level: info\n[\s\S]*  access: true\n/, 'started at info with the access log on');
  await writeFile(sidecar.configFile, text.replace('  level: info\n', '  level: warn\n'));
  const reloaded = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reloaded.status, 200, reloaded.body);
  t.match(reloaded.body, /"applied":\["log\.level"\]/, 'only log.level changed');
  const res = await request(sidecar.outboundPort, { path: '/orders/9', headers: { host: 'nowhere', 'x-request-id': 'level-only' } });
  t.ok(res.status >= 400, `answered ${res.status}`);
  const line = await sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === 'level-only', 5000).catch(() => undefined);
  t.ok(line, 'the request has its access line');
});

t.test("a caller's long method token and path are clipped in the access line, with their length", async (t) => {
  const echo = await startEchoApp();
  t.teardown(() => echo.close());
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${echo.port}` }, access: true });
  t.teardown(() => orders.stop('SIGKILL'));
  const caller = await ca.issue('frontend');
  const session = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, { cert: caller.cert, key: caller.key, ca: caller.bundle, checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const method = `X${'M'.repeat(2999)}`;
  const path = `/${'p'.repeat(7999)}`;
  await requestToItsEnd(session, { ':method': method, ':path': path, 'x-request-id': 'long-one' });
  const line = await orders.process.waitFor((l) => l.component === 'access' && l.requestId === 'long-one', 5000);
  t.equal(line.method, `${method.slice(0, MAX_LOGGED_METHOD)}… (3000 characters)`, 'the method clipped');
  t.equal(line.path, `${path.slice(0, MAX_LOGGED_PATH)}… (8000 characters)`, 'the path clipped');

  // a path is bounded in bytes as the line writes it: 2,047 quotes took 2 bytes each, C1
  // controls 6 (\u0080), and the lines (4.4 KB, 12.5 KB) passed what a pipe takes in one write
  for (const [what, char, perChar] of [['quotes', '"', 2], ['C1 controls', '\u0080', 6]] as const) {
    const id = `odd-${perChar}`;
    const odd = `/${char.repeat(2047)}`;
    await requestToItsEnd(session, { ':path': odd, 'x-request-id': id });
    const logged = await orders.process.waitFor((l) => l.component === 'access' && l.requestId === id, 5000);
    const kept = Math.floor((MAX_LOGGED_PATH - 1) / perChar);
    t.equal(logged.path, `/${char.repeat(kept)}… (2048 characters)`, `a path of ${what}: as much as fits in ${MAX_LOGGED_PATH} bytes written, with its length`);
    const raw = JSON.stringify(logged).replace(/\u0080/g, '\\u0080');
    t.ok(Buffer.byteLength(raw) < 4096, `the line within a pipe's single write (${Buffer.byteLength(raw)} bytes)`);
  }
});

t.test("an OpenAPI violation quoting a caller's input stays within the access line's bound", async (t) => {
  const echo = await startEchoApp();
  t.teardown(() => echo.close());
  const spec = new URL('../../config/orders.openapi.yaml', import.meta.url).pathname;
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${echo.port}`, openapi: `{spec: ${spec}, mode: enforce}` }, access: true });
  t.teardown(() => orders.stop('SIGKILL'));
  const caller = await ca.issue('frontend');
  const session = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, { cert: caller.cert, key: caller.key, ca: caller.bundle, checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  // a path of 400 encoded C1 controls (a raw one is refused before the check), a method
  // override of 300 raw ones (6 bytes each as written), quoted twice in the violation, and a
  // 200-character request id of quotes (2 bytes each)
  const C1 = '\u0085';
  const id = `v${'"'.repeat(199)}`;
  await requestToItsEnd(session, { ':path': `/orders/${'%C2%85'.repeat(400)}`, 'x-http-method-override': C1.repeat(300), 'x-request-id': id });
  const logged = await orders.process.waitFor((l) => l.component === 'access' && l.requestId === id, 5000);
  const message = (logged.schema as { message: string } | undefined)?.message ?? '';
  t.ok(message.length > 0, `the violation is logged (${message.slice(0, 60)}...)`);
  const raw = JSON.stringify(logged).replace(/\u0085/g, '\\u0085');
  t.ok(Buffer.byteLength(raw) < 4096, `the line within a pipe's single write (${Buffer.byteLength(raw)} bytes)`);
});
