// An OpenAPI check's maxBuffered (the bytes of request bodies one spec's check holds at once)
// across live reloads, on a real sidecar: a reload that keeps the spec keeps its budget, so
// bodies held before it still count. Each reload used to start an empty budget, and a body
// held across k reloads let k + 1 budgets fill: an app trickling bodies while an operator (or a
// ConfigMap reloader) reloaded every few seconds held memory without bound. A reload that
// changes maxBuffered moves the limit, the bytes held still counted against it.

import t from 'tap';
import net from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { httpPost, startSidecar, waitFor } from '../helpers/mesh.js';
import { freePort } from '../helpers/process.js';
import { parseResponse } from '../helpers/raw-http.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
const SPEC = resolve('config/orders.openapi.yaml');
// a valid order held back before its end: its buffer is 1 KiB (the first allocation), the whole budget
const PART = `{"item":"book","qty":3,"note":"${'x'.repeat(150)}"`;
const WHOLE = `${PART}}`;
const HEAD = `POST /orders HTTP/1.1\r\nHost: orders\r\ncontent-type: application/json\r\nidempotency-key: idem-0001\r\ncontent-length: ${WHOLE.length}\r\n\r\n`;

/** A POST /orders from the app whose body stops before its end; destroyed with the test. */
function stall(t: Tap.Test, port: number): void {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(HEAD + PART);
  t.teardown(() => socket.destroy());
}

/** A whole POST /orders from the app: the x-meshcar-error it got ('' for none). */
function whole(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('error', fail);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const res = parseResponse(received, false);
      if (res === undefined) return;
      socket.destroy();
      done(res.headers['x-meshcar-error'] ?? '');
    });
    socket.write(HEAD + WHOLE);
  });
}

/** POST /reload on an admin port. */
const postReload = (port: number) => httpPost(port, '/reload');

t.test('a reload keeps the spec check\'s body budget: bodies held before it still count', async (t) => {
  // nothing listens there: a call that passes the check fails upstream, never 'overloaded'
  const nowhere = await freePort();
  const frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${nowhere}`], identity: 'spiffe://mesh.local/svc/orders', openapi: `{spec: ${SPEC}, mode: enforce, maxBodySize: 1KiB, maxBuffered: 1KiB}` }],
  });
  t.teardown(() => frontend.stop('SIGKILL'));
  const port = frontend.outboundPort;

  stall(t, port);
  await waitFor(async () => (await whole(port)) === 'overloaded', 10_000, 'the held body filling the budget', frontend.process);
  for (let i = 1; i <= 3; i++) {
    const reload = await postReload(frontend.adminPort);
    t.same(JSON.parse(reload.body), { applied: [], restartRequired: [] }, `reload ${i}: nothing changed`);
    t.equal(await whole(port), 'overloaded', `after reload ${i}: the body held before it still fills the budget`);
  }

  // twice the limit: one more body fits beside the held one, not two
  const original = await readFile(frontend.configFile, 'utf8');
  await writeFile(frontend.configFile, original.replace('maxBuffered: 1KiB', 'maxBuffered: 2KiB'));
  const raised = await postReload(frontend.adminPort);
  t.same(JSON.parse(raised.body).applied, ['outbound.upstreams.orders.openapi.maxBuffered'], 'the new limit applied');
  stall(t, port);
  await waitFor(async () => (await whole(port)) === 'overloaded', 10_000, 'the second held body filling the raised budget', frontend.process);
  t.pass('a second held body fits the raised limit, and fills it with the first');
});
