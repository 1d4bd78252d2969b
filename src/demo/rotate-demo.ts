// `make rotate-demo`: the demo mesh (CA, orders and frontend with their sidecars) with 5-second
// leaves, traffic through it all along, and the CA's root rotated in its three steps: root add,
// root activate, root retire, each run as an operator would (`meshcar ca root ...`) as soon as
// the CA allows it. After each step it prints the roots each sidecar trusts (read from its
// stored bundle and its meshcar_identity_bundle_roots gauge) and the failed requests so far;
// traffic goes on until both sidecars have renewed on the new root alone; exits 1 if any
// request failed (or a process died), 128 + the signal's number if stopped by one. Its own folder (certs/rotate-demo) and ports (19xxx), so it
// runs beside `make demo`.

import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:http';
import { readFile, rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFrontendApp, startOrdersApp } from './apps.js';
import { demoStopping, exitedEarly, httpCall, meshcarCommand, onStopSignal, startMeshcar, stopAll, waitReady, waitTls } from './processes.js';
import { refuseTakenPorts } from './preflight.js';

const CONFIG_DIR = resolve(fileURLToPath(new URL('../../config/demo-rotate', import.meta.url)));
const DIR = 'certs/rotate-demo';
const CA_DIR = `${DIR}/ca`;
/** As config/demo-rotate names them. */
const PORTS = { ca: 19443, ordersApp: 19080, frontendApp: 19081, frontendOutbound: 19001, ordersAdmin: 19000, frontendAdmin: 19100, ordersInbound: 19543, frontendInbound: 19544 };
const SIDECARS = [
  { name: 'orders', admin: PORTS.ordersAdmin },
  { name: 'frontend', admin: PORTS.frontendAdmin },
] as const;

interface Status {
  readonly roots: ReadonlyArray<{ role: string; serial: string }>;
  readonly rootRotation: { next?: { allowedFrom: string } };
}

const status = async (): Promise<Status> => JSON.parse(await meshcarCommand(['ca', 'status', '--dir', CA_DIR, '--json'], { capture: true })) as Status;
const short = (serial: string) => serial.slice(0, 8);

/** The roots a sidecar trusts now: its stored bundle, named by the CA's roles. */
async function trusted(name: string, roles: Map<string, string>): Promise<{ serials: string[]; text: string }> {
  const pem = await readFile(join(DIR, name, 'bundle.pem'), 'utf8');
  const serials = (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c).serialNumber.toLowerCase());
  const gauge = /^meshcar_identity_bundle_roots (\d+)/m.exec((await httpCall(SIDECARS.find((s) => s.name === name)?.admin ?? 0, '/metrics')).body)?.[1];
  return { serials, text: `${name} trusts ${serials.map((s) => `${short(s)} (${roles.get(s) ?? 'retired'})`).join(', ')} [meshcar_identity_bundle_roots ${gauge}]` };
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check().catch(() => false))) {
    // a failure or a signal stops the demo: this wait ends with it (it kept the runner up to 30 s)
    if (demoStopping()) throw new Error(`stopped while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 30 s`);
    await sleep(100);
  }
}

/** Requests through the mesh so far: 200s and anything else. */
const counts = { ok: 0, failed: 0 };
/** A signal is stopping the demo: its handler says so and exits. */
let signalled = false;

async function main(): Promise<void> {
  // the children run in process groups of their own (processes.ts): Ctrl-C reaches only this
  // runner, which stops them in order and ends (the rotation's own waits are not cut short)
  onStopSignal((signal) => {
    signalled = true;
    console.log(`${signal}: stopping the rotate-demo`);
    // an interrupted rotation is no success (it exited 0 and never said what had failed): what
    // was counted, and the shell's status for the signal (130 for SIGINT) unless a failure came first
    console.log(`interrupted: ${counts.ok + counts.failed} requests through the mesh, ${counts.failed} failed`);
    void stopAll(appServers).then(() => process.exit(process.exitCode ?? 128 + (osConstants.signals[signal] ?? 1)));
  });
  // before anything is removed: a rotate-demo running here keeps its CA and folders (a second
  // one removed them, then failed on the ports, and the first failed on its missing CA)
  await refuseTakenPorts(PORTS, `${CA_DIR}/bundle.pem`);
  await rm(DIR, { recursive: true, force: true });
  await meshcarCommand(['ca', 'init', '--dir', CA_DIR, '--trust-domain', 'mesh.local']);
  for (const service of ['orders', 'frontend']) await meshcarCommand(['ca', 'token', '--dir', CA_DIR, '--service', service, '--ttl', '1h', '--out', `${DIR}/${service}.token`], { capture: true });
  // from here on, one of our processes exiting ends the rotate-demo at once (raced below)
  const early: Array<Promise<never>> = [];
  const start = (args: string[], label: string, what: string) => early.push(exitedEarly(startMeshcar(args, label), what));
  const orFail = <T>(wait: Promise<T>) => Promise.race([wait, ...early]);
  start(['ca', 'serve', '--config', join(CONFIG_DIR, 'ca.yaml')], 'ca', `the CA (127.0.0.1:${PORTS.ca})`);
  await orFail(waitTls(PORTS.ca, 'the CA', `${CA_DIR}/bundle.pem`));
  const apps = await Promise.all([startOrdersApp(PORTS.ordersApp), startFrontendApp(PORTS.frontendApp, PORTS.frontendOutbound)]);
  appServers.push(...apps.map((a) => a.server));
  start(['run', '--config', join(CONFIG_DIR, 'orders.yaml')], 'orders-sidecar', `the orders sidecar (admin :${PORTS.ordersAdmin})`);
  start(['run', '--config', join(CONFIG_DIR, 'frontend.yaml')], 'frontend-sidecar', `the frontend sidecar (admin :${PORTS.frontendAdmin})`);
  await orFail(Promise.all(SIDECARS.map((s) => waitReady(s.admin, `the ${s.name} sidecar`))));
  console.log('\nmeshcar rotate-demo: frontend → orders with 5 s certificates; traffic runs while the CA root rotates\n');

  let running = true;
  const traffic = (async () => {
    // a failure stops everything (demoStopping): the calls would fail for ever
    for (let n = 1; running && !demoStopping(); n++) {
      const calls = [httpCall(PORTS.frontendApp, `/checkout/${n}`), httpCall(PORTS.frontendOutbound, `/orders/${n}`, { host: 'orders' })];
      for (const result of await Promise.allSettled(calls)) {
        if (result.status === 'fulfilled' && result.value.status === 200) counts.ok++;
        else counts.failed++;
      }
      await sleep(50);
    }
  })();
  const report = async (title: string) => {
    const roles = new Map((await status()).roots.map((r) => [r.serial, r.role] as const));
    console.log(title);
    for (const s of SIDECARS) console.log(`  ${(await trusted(s.name, roles)).text}`);
    console.log(`  failed requests so far: ${counts.failed} of ${counts.ok + counts.failed}`);
  };
  await report('before: one root');

  const roots = async (name: string) => (await trusted(name, new Map())).serials.length;
  const leafUnder = async (name: string, rootFile: string) => {
    const [chain, root] = await Promise.all([readFile(join(DIR, name, 'svid.crt'), 'utf8'), readFile(rootFile, 'utf8')]);
    const issuer = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.[1] ?? '';
    return new X509Certificate(issuer).checkIssued(new X509Certificate(root));
  };
  const steps: Array<[string, () => Promise<boolean>]> = [
    ['add', async () => (await roots('orders')) === 2 && (await roots('frontend')) === 2],
    ['activate', async () => (await leafUnder('orders', `${CA_DIR}/root.crt`)) && (await leafUnder('frontend', `${CA_DIR}/root.crt`))],
    ['retire', async () => (await roots('orders')) === 1 && (await roots('frontend')) === 1],
  ];
  for (const [step, done] of steps) {
    const allowedFrom = Date.parse((await status()).rootRotation.next?.allowedFrom ?? '');
    if (allowedFrom > Date.now()) {
      console.log(`  (the CA allows "root ${step}" in ${Math.ceil((allowedFrom - Date.now()) / 1000)} s: one leaf lifetime after the step before)`);
      await sleep(allowedFrom - Date.now() + 50);
    }
    const started = Date.now();
    const said = (await orFail(meshcarCommand(['ca', 'root', step, '--dir', CA_DIR], { capture: true }))).trim();
    await orFail(until(done, `root ${step} reaching both sidecars`));
    await report(`\n$ meshcar ca root ${step} --dir ${CA_DIR}    (in effect in both sidecars after ${((Date.now() - started) / 1000).toFixed(1)} s)\n  ${said}`);
  }
  // the single new root's first renewals: traffic on until each sidecar has a leaf signed since
  // retire (its trust reduced to that root), so a request failing on it is counted
  const leafSerial = async (name: string) => new X509Certificate(await readFile(join(DIR, name, 'svid.crt'), 'utf8')).serialNumber;
  const afterRetire = await Promise.all(SIDECARS.map((s) => leafSerial(s.name)));
  const renewing = Date.now();
  await orFail(until(async () => (await Promise.all(SIDECARS.map((s, i) => leafSerial(s.name).then((serial) => serial !== afterRetire[i])))).every(Boolean), 'a renewal of both sidecars on the new root alone'));
  console.log(`\nboth sidecars renewed on the new root alone (after ${((Date.now() - renewing) / 1000).toFixed(1)} s)\n  failed requests so far: ${counts.failed} of ${counts.ok + counts.failed}`);
  running = false;
  await traffic;
  console.log(`\nroot rotation done: ${counts.ok + counts.failed} requests through the mesh, ${counts.failed} failed`);
  await stopAll(apps.map((a) => a.server));
  if (counts.failed > 0) process.exitCode = 1;
}

/** The app servers, once started: a failure stops them too, or they would keep the process alive. */
const appServers: Server[] = [];

main().catch(async (err: unknown) => {
  // a stop under way (a signal) has said why and exits by itself
  if (signalled) return;
  console.error(`rotate-demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
  await stopAll(appServers);
  // a wait still running (a step's sleep) would hold the runner: it is over
  process.exit(1);
});
