// A connect that fails because this host is short of something (here EMFILE: the sidecar has no
// file descriptor left) is not the endpoint's fault: the request fails with 503
// upstream_unavailable naming the cause, but the endpoint is neither backed off nor ejected
// (6 such failures in a row, one more than ejects an endpoint that fails), and once descriptors
// are free again it serves at once. A real `meshcar run` (its descriptor limit lowered once it is up), its
// app connections filling the rest, an HTTP/2 mTLS upstream in this process.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { parseResponse, type RawResponse } from '../helpers/raw-http.js';
import { frontendFilesHead } from '../helpers/files-frontend.js';
import { startMeshcar } from '../helpers/process.js';

const LIMIT = 64;
/** One more than the failures in a row that eject an endpoint (outlier detection's default, 5). */
const FAILURES = 6;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The descriptors numbered below the limit `pid` holds (one it inherited may be numbered above: the limit bounds numbers). */
const fdCount = async (pid: number) => (await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).filter((fd) => Number(fd) < LIMIT).length;

/** One request on an open connection; its response. */
async function ask(socket: net.Socket, path = '/echo'): Promise<RawResponse> {
  let received = Buffer.alloc(0);
  const answer = new Promise<RawResponse>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseResponse(received, false);
      if (parsed) {
        socket.off('data', onData);
        resolve(parsed);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an answer: ${received.toString('latin1')}`)));
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: payments\r\n\r\n`);
  return answer;
}

t.test(`EMFILE on connect: 503 naming it, the endpoint not held to blame (nofile ${LIMIT})`, async (t) => {
  const dir = t.testdir();
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const config = join(dir, 'frontend.yaml');
  await writeFile(
    config,
    [
      ...(await frontendFilesHead(dir, pki)),
      // one endpoint may be ejected (the default keeps at least half of them in)
      `    payments: {endpoints: [127.0.0.1:${upstream.port}], identity: ${UPSTREAM_ID}, outlierDetection: {maxEjectionPercent: 100}}`,
      'admin:',
      '  listen: 127.0.0.1:0',
      'log: {level: info, access: false}',
    ].join('\n') + '\n',
  );
  const proc = startMeshcar(['run', '--config', config]);
  t.teardown(() => proc.stop('SIGKILL'));
  const ready = await proc.waitFor((line) => line.msg === 'sidecar ready');
  const outboundPort = Number((ready.outbound as { port: number }).port);
  const adminPort = Number((ready.admin as { port: number }).port);
  const pid = proc.child.pid as number;
  // the limit is lowered once the sidecar is up: Node's module loader opens many files at once
  // while it starts, and under a loaded machine that alone could pass 64
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${LIMIT}:${LIMIT}`]);

  // app connections (idle) until the sidecar holds every descriptor it may
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < LIMIT && (await fdCount(pid)) < LIMIT; i++) {
    const before = await fdCount(pid);
    const socket = net.connect(outboundPort, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    let closed = false;
    socket.once('close', () => (closed = true));
    for (let wait = 0; wait < 200 && !closed && (await fdCount(pid)) <= before; wait++) await sleep(10);
    if (closed) break;
    held.push(socket);
  }
  t.equal(await fdCount(pid), LIMIT, `the sidecar holds all ${LIMIT} descriptors (${held.length} of them app connections)`);
  t.equal(upstream.connections, 0, 'no upstream connection yet');

  for (let i = 0; i < FAILURES; i++) {
    const res = await ask(held[0] as net.Socket);
    t.equal(res.status, 503, `request ${i + 1}: 503`);
    t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
    t.match(JSON.parse(res.body).message, /no file descriptor left \(EMFILE\); the endpoint is not at fault/, 'the message names the cause');
    if (res.headers.connection === 'close') break;
  }
  await proc.waitFor((line) => String(line.msg).startsWith('cannot connect upstream: a local shortage'), 5_000);
  t.notOk(
    proc.lines.some((line) => line.msg === 'upstream endpoint failed'),
    'the endpoint is not logged as failed',
  );

  // descriptors free again: the endpoint serves the next request, and was never ejected
  for (const socket of held.splice(1)) socket.destroy();
  for (let wait = 0; wait < 200 && (await fdCount(pid)) > LIMIT / 2; wait++) await sleep(10);
  const served = await ask(held[0] as net.Socket);
  t.equal(served.status, 200, 'the next request is served');
  const admin = net.connect(adminPort, '127.0.0.1');
  admin.on('error', () => undefined);
  await once(admin, 'connect');
  t.teardown(() => admin.destroy());
  admin.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
  let page = Buffer.alloc(0);
  let metrics: RawResponse | undefined;
  while (!metrics) {
    const [chunk] = (await once(admin, 'data')) as [Buffer];
    page = Buffer.concat([page, chunk]);
    metrics = parseResponse(page, false);
  }
  const ejections = /^meshcar_outlier_ejections_total\{upstream="payments"\} (\d+)/m.exec(metrics.body)?.[1];
  t.ok(ejections === undefined || ejections === '0', `no ejection (meshcar_outlier_ejections_total: ${String(ejections)})`);
  t.equal(await proc.stop(), 0);
});
