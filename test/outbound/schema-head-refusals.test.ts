// A HEAD the outbound's OpenAPI check refuses (enforce), from an app speaking h2c: the
// outbound's h2c listener is Node's http2 server, whose respond() ends a HEAD answer with its
// head, and the refusal then wrote its JSON body: a write after end, emitted as 'error' on a
// stream with no listener yet (only forwarded requests get one), which took the whole sidecar
// down (review of session 8's diff, H1). Now the answer is the head alone and the process
// serves on. A real sidecar process, so a crash shows as an exit, not a test-runner fault.

import t from 'tap';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const SPEC = resolve('config/orders.openapi.yaml');

let ca: MeshCa;
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' } });
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', openapi: `{spec: ${SPEC}, mode: enforce}` }],
  });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
});

function ask(session: http2.ClientHttp2Session, method: string, path: string): Promise<{ status?: string; error?: string; dataBytes: number; rstCode?: number }> {
  return new Promise((done) => {
    const req = session.request({ ':method': method, ':path': path, ':authority': 'orders' });
    const seen: { status?: string; error?: string; dataBytes: number; rstCode?: number } = { dataBytes: 0 };
    req.on('response', (h) => {
      seen.status = String(h[':status']);
      seen.error = h['x-meshcar-error'] as string | undefined;
    });
    req.on('data', (c: Buffer) => (seen.dataBytes += c.length));
    req.on('error', () => {});
    req.on('close', () => done({ ...seen, rstCode: req.rstCode }));
  });
}

t.test('HEAD refused by the spec over the h2c listener: the head alone, and the sidecar serves on', async (t) => {
  const session = http2.connect(`http://127.0.0.1:${frontend.outboundPort}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  for (const path of ['/nope', '/orders']) {
    const seen = await ask(session, 'HEAD', path);
    t.equal(seen.status, path === '/nope' ? '404' : '400', `HEAD ${path}: the refusal's status`);
    t.equal(seen.dataBytes, 0, 'no body');
    t.equal(seen.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'no reset');
  }
  const get = await ask(session, 'GET', '/nope');
  t.equal(get.status, '404', 'the sidecar still answers');
  t.ok(get.dataBytes > 0, 'a GET refusal keeps its JSON body');
  t.equal(frontend.process.child.exitCode, null, 'the frontend sidecar is still running');
});
