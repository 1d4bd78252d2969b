// `make demo`: a whole local mesh in one command. Makes a CA under certs/ if none exists,
// starts the CA, the two demo apps and their sidecars, drives real traffic through the mesh
// (including one call the policy refuses and one TLS connection without a certificate), and
// prints a summary. Runs until Ctrl-C, or DEMO_SECONDS seconds; stops everything it started.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFrontendApp, startOrdersApp } from './apps.js';
import { LatencyRecorder, printRouteTable, printTrafficSummary } from './summary.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
/** The node flags of the `meshcar` launcher (src/cli.ts's first line), for `node dist/cli.js`. */
const LAUNCHER_FLAGS = ['--max-semi-space-size=4'];
const CONFIG_DIR = resolve(fileURLToPath(new URL('../../config/demo', import.meta.url)));
const PORTS = { ca: 18443, ordersApp: 18080, frontendApp: 18081, ordersInbound: 15443, frontendOutbound: 15001, ordersAdmin: 15000, frontendAdmin: 15100 };

const children: ChildProcess[] = [];

function run(args: string[], label: string): ChildProcess {
  const child = spawn(process.execPath, [...LAUNCHER_FLAGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`[${label}] ${chunk.toString()}`));
  // sidecar logs are JSON lines; the demo shows its own summary instead, but warnings matter
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) process.stdout.write(`[${label}] ${line}\n`);
  });
  children.push(child);
  return child;
}

async function cli(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  if (code !== 0) throw new Error(`meshcar ${args.join(' ')} failed (exit ${code})`);
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.end(method === 'POST' ? '{"item":"book"}' : undefined);
  });
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });

async function waitReady(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const status = await get(port, '/ready').then((r) => r.status, () => 0);
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(`${what} did not become ready within 30 s`);
}

async function waitCa(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((done) => {
      const socket = tls.connect({ host: '127.0.0.1', port: PORTS.ca, rejectUnauthorized: false }, () => {
        socket.destroy();
        done(true);
      });
      socket.on('error', () => done(false));
    });
    if (up) return;
    await sleep(100);
  }
  throw new Error('the CA did not start within 15 s');
}

/** A TLS connection with no client certificate: the inbound listener must refuse it. */
function connectWithoutCertificate(): Promise<string> {
  return new Promise((done) => {
    const socket = tls.connect({ host: '127.0.0.1', port: PORTS.ordersInbound, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write('GET /orders HTTP/1.1\r\nHost: orders\r\n\r\n');
    });
    socket.on('data', (data: Buffer) => done(`unexpected answer: ${data.toString().split('\r\n')[0]}`));
    socket.on('error', (err: NodeJS.ErrnoException) => done(`refused (${err.code ?? err.message})`));
    socket.on('close', () => done('refused (connection closed by the sidecar)'));
  });
}

async function main(): Promise<void> {
  const seconds = Number(process.env.DEMO_SECONDS ?? 0);
  await mkdir('certs', { recursive: true });
  if (!existsSync(join('certs', 'ca', 'issuer.key'))) await cli(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local']);
  for (const service of ['orders', 'frontend']) await cli(['ca', 'token', '--dir', 'certs/ca', '--service', service, '--ttl', '1h', '--out', `certs/${service}.token`]);

  run(['ca', 'serve', '--config', join(CONFIG_DIR, 'ca.yaml')], 'ca');
  await waitCa();
  const apps = await Promise.all([startOrdersApp(PORTS.ordersApp), startFrontendApp(PORTS.frontendApp, PORTS.frontendOutbound)]);
  run(['run', '--config', join(CONFIG_DIR, 'orders.yaml')], 'orders-sidecar');
  run(['run', '--config', join(CONFIG_DIR, 'frontend.yaml')], 'frontend-sidecar');
  await Promise.all([waitReady(PORTS.ordersAdmin, 'the orders sidecar'), waitReady(PORTS.frontendAdmin, 'the frontend sidecar')]);
  console.log('\nmeshcar demo: CA on :18443, frontend (app :18081, sidecar out :15001) → orders (sidecar in :15443, app :18080)');
  printUrls();
  console.log(seconds > 0 ? `driving traffic for ${seconds} s…\n` : 'driving traffic; the mesh stays up until Ctrl-C (then the summary, and everything stops)…\n');

  const recorder = new LatencyRecorder();
  const policy = await get(PORTS.frontendOutbound, '/orders/7', { host: 'orders' }, 'DELETE');
  const noCert = await connectWithoutCertificate();

  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const until = seconds > 0 ? Date.now() + seconds * 1000 : Number.POSITIVE_INFINITY;
  let lastReport = Date.now();
  let n = 0;
  while (!stopping && Date.now() < until) {
    n++;
    const calls = [
      recorder.time('GET frontend /checkout/{id}', () => get(PORTS.frontendApp, `/checkout/${n}`)),
      recorder.time('GET orders /orders/{id}', () => get(PORTS.frontendOutbound, `/orders/${n}`, { host: 'orders' })),
    ];
    if (n % 5 === 0) calls.push(recorder.time('POST orders /orders', () => get(PORTS.frontendOutbound, '/orders', { host: 'orders', 'content-type': 'application/json' }, 'POST')));
    if (n % 10 === 0) calls.push(recorder.time('GET orders /orders', () => get(PORTS.frontendOutbound, '/orders?limit=5', { host: 'orders' })));
    await Promise.all(calls);
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      console.log(`  … ${recorder.total()} requests so far`);
    }
    await sleep(20);
  }

  printTrafficSummary(recorder, { policyStatus: policy.status, policyBody: policy.body, noCert });
  await printRouteTable([
    { name: 'frontend sidecar', port: PORTS.frontendAdmin },
    { name: 'orders sidecar', port: PORTS.ordersAdmin },
  ]);
  // the direct calls and the checkouts both reach orders: its sidecars count both
  console.log('\nThe orders sidecar counts more GET /orders/{id} than the client row above: each frontend checkout');
  console.log('also calls GET /orders/{id} through the frontend sidecar, besides the direct calls.');
  console.log(`\nmetrics: http://127.0.0.1:${PORTS.frontendAdmin}/metrics and http://127.0.0.1:${PORTS.ordersAdmin}/metrics (also /identity, /endpoints, /ready)`);
  await shutdown(apps.map((a) => a.server));
}

/** Printed once the mesh is up, so it can be explored while traffic runs. */
function printUrls(): void {
  const admin = (port: number) => `http://127.0.0.1:${port}`;
  console.log('while it runs, try:');
  console.log(`  curl -H 'Host: orders' http://127.0.0.1:${PORTS.frontendOutbound}/orders/42      # a call through both sidecars`);
  for (const [name, port] of [['frontend', PORTS.frontendAdmin], ['orders', PORTS.ordersAdmin]] as const) {
    console.log(`  ${name} sidecar admin: ${admin(port)}/metrics  ${admin(port)}/endpoints  ${admin(port)}/identity  ${admin(port)}/config  ${admin(port)}/ready`);
  }
}

async function shutdown(servers: http.Server[] = []): Promise<void> {
  keepAlive.destroy();
  for (const server of servers) server.close();
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  console.log('stopped every process the demo started');
}

main().catch(async (err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown();
  process.exitCode = 1;
});
