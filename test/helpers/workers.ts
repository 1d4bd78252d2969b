// Test helper for sidecars with `workers` > 1: what a test file of them shares (our CA, an echo
// app, a probe certificate), the primary's GET /workers, and one request on a new mTLS
// connection straight to an inbound port (the primary hands each new connection to the next
// worker, so a few of them reach every worker).

import http2 from 'node:http2';
import { readdir, readFile, readlink } from 'node:fs/promises';
import type tap from 'tap';
import { startMeshCa, type MeshCa, type RunningSidecar } from './mesh.js';
import { startEchoApp, type TestApp } from './apps.js';

export interface WorkersFixture {
  readonly ca: MeshCa;
  readonly app: TestApp;
  /** A certificate of service `probe` (PEM), trusted by every sidecar of the CA. */
  readonly probe: { cert: string; key: string; bundle: string };
}

/** The CA, echo app and probe a test file's tests share: filled in before its first test, stopped after the last. */
export function workersFixture(t: typeof tap): WorkersFixture {
  const fixture = {} as { -readonly [K in keyof WorkersFixture]: WorkersFixture[K] };
  t.before(async () => {
    fixture.ca = await startMeshCa(t.testdir());
    fixture.app = await startEchoApp();
    fixture.probe = await fixture.ca.issue('probe');
  });
  t.teardown(async () => {
    await fixture.ca?.stop();
    await fixture.app?.close();
  });
  return fixture;
}

export interface WorkersView {
  /** The config generation the primary holds. */
  readonly generation: number;
  readonly workers: Array<{ id: number; pid: number; listening: boolean; serial: string; requests: number; generation: number | null; starting?: boolean; unresponsive?: boolean }>;
  readonly restarts: number;
}

export async function workersOf(sidecar: RunningSidecar): Promise<WorkersView> {
  const res = await sidecar.admin('/workers');
  if (res.status !== 200) throw new Error(`/workers: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as WorkersView;
}

/** The status and the serial the server presented, for one request as `client` (PEM cert, key, bundle). */
export function probeRequest(port: number, client: { cert: string; key: string; bundle: string }, path = '/headers'): Promise<{ status: number; serial: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { cert: client.cert, key: client.key, ca: client.bundle, checkServerIdentity: () => undefined });
    session.once('error', reject);
    const req = session.request({ ':path': path });
    req.once('error', reject);
    req.once('response', (headers) => {
      const serial = (session.socket as unknown as { getPeerCertificate(): { serialNumber: string } }).getPeerCertificate().serialNumber.toLowerCase();
      req.resume();
      req.once('end', () => {
        session.close();
        resolve({ status: Number(headers[':status']), serial });
      });
    });
    req.end();
  });
}

/** A request held by the app until released, on a new mTLS connection: its status, or the error that ended it. */
export function heldRequest(probe: { cert: string; key: string; bundle: string }, port: number, id: string): Promise<number | string> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { cert: probe.cert, key: probe.key, ca: probe.bundle, checkServerIdentity: () => undefined });
    session.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    const req = session.request({ ':path': '/slow?hold', 'x-request-id': id });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    req.on('close', () => resolve(`closed before an answer`));
    req.on('response', (headers) => {
      req.resume();
      req.on('end', () => {
        session.close();
        resolve(Number(headers[':status']));
      });
    });
    req.end();
  });
}

/** SIGTERM to the sidecar; its exit code and how long the shutdown took. */
export async function terminated(sidecar: RunningSidecar): Promise<{ code: number | null; took: number }> {
  const started = Date.now();
  sidecar.process.child.kill('SIGTERM');
  const code = await sidecar.process.exited();
  return { code, took: Date.now() - started };
}

/** The TCP ports process `pid` listens on (IPv4 and IPv6), read from /proc: its socket fds matched with the kernel's LISTEN sockets. */
export async function listeningPortsOf(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ... inode: st 0A is LISTEN
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && inodes.has(fields[9] ?? '')) ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}
