// The demo's check before it writes or starts anything (src/demo/preflight.ts): a port already
// answering is named with what it is for, a TLS server on the CA port whose certificate chains
// to this folder's CA is another demo running here, and the runner then exits 1 with one line
// without touching the folder (no CA made, no join token or config copy overwritten).
// Ports: real listeners on a base drawn below the ephemeral range whose ports were all free,
// away from the demo tests' 15000-18443.

import t from 'tap';
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { demoPorts } from '../../src/demo/ports.js';
import { DEMO_RUNNER, freeDemoBase } from '../helpers/demo-base.js';
import { refuseTakenPorts } from '../../src/demo/preflight.js';

/** `server` listening on 127.0.0.1:`port` until the test ends. */
async function hold(t: Tap.Test, server: net.Server, port: number): Promise<void> {
  server.on('connection', (socket: net.Socket) => socket.on('error', () => undefined));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
}

/** A TLS server presenting a leaf of `pki`, as the demo CA presents one of its own. */
async function tlsServer(pki: Awaited<ReturnType<typeof makePki>>): Promise<tls.Server> {
  const leaf = await pki.issue('spiffe://mesh.local/meshcar/ca');
  return tls.createServer({ cert: leaf.chainPem, key: leaf.privateKeyPem });
}

t.test('nothing answering: it passes; a plain listener on an app port: named with what the port is for', async (t) => {
  const base = await freeDemoBase();
  const ports = demoPorts(base);
  const dir = t.testdir();
  await t.resolves(refuseTakenPorts(ports, join(dir, 'bundle.pem')), 'every port free');
  await hold(t, net.createServer(), ports.ordersApp);
  await t.rejects(refuseTakenPorts(ports, join(dir, 'bundle.pem')), { message: `127.0.0.1:${ports.ordersApp} (the orders app's port) is taken by another process` });
});

t.test("a TLS server on the CA port: another demo when it chains to this folder's CA, another process when not", async (t) => {
  const ours = await makePki('mesh.local');
  const dir = t.testdir();
  await writeFile(join(dir, 'bundle.pem'), ours.bundlePem);
  const base = await freeDemoBase();
  const ports = demoPorts(base);
  await hold(t, await tlsServer(ours), ports.ca);
  await t.rejects(refuseTakenPorts(ports, join(dir, 'bundle.pem')), { message: new RegExp(`^another demo is running here \\(its CA answers on 127\\.0\\.0\\.1:${ports.ca} with this folder's CA\\): wait for it to end or stop it`) });

  const other = demoPorts(await freeDemoBase());
  await hold(t, await tlsServer(await makePki('mesh.local')), other.ca);
  await t.rejects(refuseTakenPorts(other, join(dir, 'bundle.pem')), { message: `127.0.0.1:${other.ca} (the demo CA's port) is taken by another process` });
});

t.test('the runner: one line, exit 1, and the folder left as it was (no CA made, nothing written)', async (t) => {
  const base = await freeDemoBase();
  const ports = demoPorts(base);
  await hold(t, net.createServer(), ports.frontendAdmin);
  const cwd = t.testdir();
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [DEMO_RUNNER], { cwd, timeout: 20_000, env: { ...process.env, DEMO_PORT_BASE: String(base), DEMO_SECONDS: '5' } }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.equal(run.stderr, `demo failed: 127.0.0.1:${ports.frontendAdmin} (the frontend sidecar's admin port) is taken by another process; stop the process that holds it, or move every demo port with DEMO_PORT_BASE=N (ports N to N+3443; now ${base})\n`);
  t.notMatch(run.stdout, /created CA|join token/, 'nothing made');
  t.notMatch(run.stdout, /stopped every process/, 'nothing started, so no line says processes stopped');
  t.equal(await access(join(cwd, 'certs')).then(() => 'exists', () => 'absent'), 'absent', 'no certs/ folder');
});

t.test('a DEMO_PORT_BASE that is no port: its one line, exit 1, nothing else said', async (t) => {
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [DEMO_RUNNER], { cwd: t.testdir(), timeout: 20_000, env: { ...process.env, DEMO_PORT_BASE: 'abc', DEMO_SECONDS: '5' } }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.equal(run.stderr, 'demo failed: DEMO_PORT_BASE=abc: expected a whole number from 1024 to 62092 (the demo uses ports base to base+3443)\n');
  t.equal(run.stdout, '', 'no "stopped every process" when none was started');
});
