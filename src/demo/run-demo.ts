// `make demo`: a whole local mesh in one command. Makes a CA under certs/ if none exists,
// starts the CA, the two demo apps and their sidecars, drives real traffic through the mesh
// (including one call the policy refuses and one TLS connection without a certificate), and
// prints a summary. Runs until Ctrl-C, or DEMO_SECONDS seconds; stops everything it started.
// Its ports come from DEMO_PORT_BASE (ports.ts); one already answering (another demo, another
// program) stops it before it writes anything (preflight.ts). A process of its own that exits
// early (a port clash) fails it at once with one line naming why; every process and server is
// then stopped.

import { existsSync } from 'node:fs';
import type http from 'node:http';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFrontendApp, startOrdersApp } from './apps.js';
import { demoConfigDir, demoPortBase, demoPorts, moveAdvice, portAdvice } from './ports.js';
import { demoSeconds } from './demo-seconds.js';
import { refuseTakenPorts } from './preflight.js';
import { demoStopping, exitedEarly, httpCall as get, meshcarCommand as cli, onStopSignal, startMeshcar as run, stopAll, waitReady, waitTls } from './processes.js';
import { LatencyRecorder, printDiscoveredApi, printRouteTable, printTrafficSummary } from './summary.js';

const CONFIG_DIR = resolve(fileURLToPath(new URL('../../config/demo', import.meta.url)));
/** The orders API; the demo configs name it relative to the working directory, as certs/. */
const SPEC = resolve(fileURLToPath(new URL('../../config/orders.openapi.yaml', import.meta.url)));
const SPEC_IN_CWD = join('config', 'orders.openapi.yaml');
const ORDER = { host: 'orders', 'content-type': 'application/json', 'idempotency-key': 'demo-order-1' };

/** Calls that break the orders API: the orders sidecar (enforce) refuses each before the app. */
const INVALID_CALLS: ReadonlyArray<{ method: string; path: string; headers?: Record<string, string>; body?: string }> = [
  { method: 'GET', path: '/orders/abc' },
  { method: 'GET', path: '/orders/7/invoice' },
  { method: 'GET', path: '/orders?limit=5' },
  { method: 'POST', path: '/orders', headers: ORDER, body: '{"item":"book","qty":0}' },
  { method: 'POST', path: '/orders', headers: { ...ORDER, 'content-type': 'text/plain' }, body: 'one book' },
];
let BASE = 15000;
let PORTS = demoPorts(BASE);
/** The demo apps' servers: stopped with the processes, on success and on failure alike. */
const servers: http.Server[] = [];
/** The stop signal (Ctrl-C, SIGTERM) once one came: what ends after it ends as asked, not as a failure. */
let signalled: NodeJS.Signals | undefined;
/** Set once traffic runs: a signal then ends the traffic, the summary prints, and everything stops. */
let trafficRunning = false;

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

/**
 * Whether `dir` holds a CA whose `ca init` finished: its issuer key, and no "initializing" mark
 * in its state. A Ctrl-C (or a full disk) during the first demo's `ca init` left the key and the
 * mark, and every later demo went on to `ca token`, which refused the unfinished CA: `ca init`
 * is run again instead, and makes the CA afresh. A state it cannot read is left to the commands
 * that read it (they say what is wrong).
 */
async function caFinished(dir: string): Promise<boolean> {
  if (!existsSync(join(dir, 'issuer.key'))) return false;
  const state = await readFile(join(dir, 'state.json'), 'utf8')
    .then((text) => JSON.parse(text) as unknown)
    .catch(() => undefined);
  return !(typeof state === 'object' && state !== null && 'initializing' in state);
}

async function main(): Promise<void> {
  // first thing: a signal during start-up stops at once what is already running (the waits
  // then end); one during traffic ends the traffic, and the summary still prints
  onStopSignal((signal) => {
    signalled = signal;
    if (!trafficRunning) void stopAll(servers);
  });
  const seconds = demoSeconds(process.env.DEMO_SECONDS);
  BASE = demoPortBase(process.env.DEMO_PORT_BASE);
  PORTS = demoPorts(BASE);
  // before anything is written: a running demo's tokens and config copies are left alone
  await refuseTakenPorts(PORTS, join('certs', 'ca', 'bundle.pem'));
  await mkdir('certs', { recursive: true });
  if (!(await caFinished(join('certs', 'ca')))) await cli(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local']);
  if (!existsSync(SPEC_IN_CWD)) {
    await mkdir('config', { recursive: true });
    await copyFile(SPEC, SPEC_IN_CWD);
  }
  for (const service of ['orders', 'frontend']) await cli(['ca', 'token', '--dir', 'certs/ca', '--service', service, '--ttl', '1h', '--out', `certs/${service}.token`]);

  const configs = await demoConfigDir(CONFIG_DIR, PORTS, join('certs', 'demo-config'));

  // from here on, any of our processes exiting early ends the demo at once (raced below)
  const early: Array<Promise<never>> = [];
  const start = (command: string[], file: string, label: string, what: string) => early.push(exitedEarly(run([...command, '--config', join(configs, file)], label), what));
  const orFail = <T>(wait: Promise<T>) => Promise.race([wait, ...early]);
  start(['ca', 'serve'], 'ca.yaml', 'ca', `the CA (127.0.0.1:${PORTS.ca})`);
  await orFail(waitTls(PORTS.ca, 'the demo CA', join('certs', 'ca', 'bundle.pem')));
  // both settled before a failure is thrown: when one cannot listen, the other must be stopped too
  const apps = await Promise.allSettled([startOrdersApp(PORTS.ordersApp), startFrontendApp(PORTS.frontendApp, PORTS.frontendOutbound)]);
  for (const app of apps) if (app.status === 'fulfilled') servers.push(app.value.server);
  for (const app of apps) if (app.status === 'rejected') throw app.reason;
  start(['run'], 'orders.yaml', 'orders-sidecar', `the orders sidecar (127.0.0.1:${PORTS.ordersInbound}, admin :${PORTS.ordersAdmin})`);
  start(['run'], 'frontend.yaml', 'frontend-sidecar', `the frontend sidecar (127.0.0.1:${PORTS.frontendOutbound}, :${PORTS.frontendInbound}, admin :${PORTS.frontendAdmin})`);
  await orFail(Promise.all([waitReady(PORTS.ordersAdmin, 'the orders sidecar'), waitReady(PORTS.frontendAdmin, 'the frontend sidecar')]));
  console.log(`\nmeshcar demo: CA on :${PORTS.ca}, frontend (app :${PORTS.frontendApp}, sidecar out :${PORTS.frontendOutbound}) → orders (sidecar in :${PORTS.ordersInbound}, app :${PORTS.ordersApp})`);
  printUrls(configs);
  await orFail(traffic(seconds));
  await stopAll(servers);
}

/** The traffic and the summary; raced against our processes exiting. */
async function traffic(seconds: number): Promise<void> {
  trafficRunning = true;
  if (signalled) return; // stopped between the last start-up step and here: nothing to sum up
  console.log(seconds > 0 ? `driving traffic for ${seconds} s…\n` : 'driving traffic; the mesh stays up until Ctrl-C (then the summary, and everything stops)…\n');

  const recorder = new LatencyRecorder();
  const policy = await get(PORTS.frontendOutbound, '/orders/7', { host: 'orders' }, 'DELETE');
  const noCert = await connectWithoutCertificate();
  const invalid: string[] = [];
  for (const c of INVALID_CALLS) {
    const answer = await get(PORTS.frontendOutbound, c.path, { host: 'orders', ...c.headers }, c.method, c.body);
    const parsed = JSON.parse(answer.body || '{}') as { error?: string; message?: string };
    invalid.push(`  ${`${c.method} ${c.path}`.padEnd(22)} → ${answer.status} ${parsed.error ?? ''}: ${parsed.message ?? answer.body.slice(0, 60)}`);
  }

  const until = seconds > 0 ? Date.now() + seconds * 1000 : Number.POSITIVE_INFINITY;
  let lastReport = Date.now();
  let n = 0;
  // a failure (a process exited, raced in main) stops everything: the calls would fail for ever
  while (signalled === undefined && !demoStopping() && Date.now() < until) {
    n++;
    const calls = [
      recorder.time('GET frontend /checkout/{id}', () => get(PORTS.frontendApp, `/checkout/${n}`)),
      recorder.time('GET orders /orders/{id}', () => get(PORTS.frontendOutbound, `/orders/${n}`, { host: 'orders' })),
    ];
    if (n % 5 === 0) calls.push(recorder.time('POST orders /orders', () => get(PORTS.frontendOutbound, '/orders', ORDER, 'POST', `{"item":"book","qty":${1 + (n % 3)}}`)));
    if (n % 10 === 0) calls.push(recorder.time('GET orders /orders', () => get(PORTS.frontendOutbound, '/orders?status=shipped&limit=5', { host: 'orders' })));
    await Promise.all(calls);
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      console.log(`  … ${recorder.total()} requests so far`);
    }
    await sleep(20);
  }

  if (demoStopping()) return;
  printTrafficSummary(recorder, { policyStatus: policy.status, policyBody: policy.body, noCert });
  console.log('\nOpenAPI, enforce on the orders sidecar (config/orders.openapi.yaml): calls that break the API never reach the app');
  for (const line of invalid) console.log(line);
  await printRouteTable([
    { name: 'frontend sidecar', port: PORTS.frontendAdmin },
    { name: 'orders sidecar', port: PORTS.ordersAdmin },
  ]);
  await printDiscoveredApi(PORTS.ordersAdmin);
  // the direct calls and the checkouts both reach orders: its sidecars count both
  console.log('\nThe orders sidecar counts more GET /orders/{id} than the client row above: each frontend checkout');
  console.log('also calls GET /orders/{id} through the frontend sidecar, besides the direct calls.');
  console.log(`\nmetrics: http://127.0.0.1:${PORTS.frontendAdmin}/metrics and http://127.0.0.1:${PORTS.ordersAdmin}/metrics (also /identity, /endpoints, /ready)`);
}

/** Printed once the mesh is up, so it can be explored while traffic runs. */
function printUrls(configs: string): void {
  const admin = (port: number) => `http://127.0.0.1:${port}`;
  console.log('while it runs, try:');
  console.log(`  curl -H 'Host: orders' http://127.0.0.1:${PORTS.frontendOutbound}/orders/42      # a call through both sidecars`);
  for (const [name, port] of [['frontend', PORTS.frontendAdmin], ['orders', PORTS.ordersAdmin]] as const) {
    console.log(`  ${name} sidecar admin: ${admin(port)}/metrics  ${admin(port)}/endpoints  ${admin(port)}/identity  ${admin(port)}/config  ${admin(port)}/debug/tls`);
  }
  console.log(`  npx meshcar doctor --config ${relative(process.cwd(), join(configs, 'frontend.yaml'))}   # every check the frontend sidecar depends on`);
}

main().catch(async (err: unknown) => {
  if (signalled) {
    // a start-up step cut short by the stop (a wait aborted, a command killed by the same Ctrl-C)
    console.log(`${signalled}: the demo stopped before the mesh was up`);
    await stopAll(servers);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  // a port clash, ours (EADDRINUSE from an app) or a child's (its last line), says how to move
  const clash = /EADDRINUSE|EACCES|something else answers|is taken by another process/.test(message) ? `; ${portAdvice(BASE)}` : /^another demo is running here/.test(message) ? `, or ${moveAdvice(BASE)} to run this one beside it` : '';
  console.error(`demo failed: ${message}${clash}`);
  process.exitCode = 1;
  await stopAll(servers);
});
