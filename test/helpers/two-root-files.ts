// Test helper: a `meshcar run` sidecar for `orders` whose `identity.files` bundle holds two
// roots, from two meshcar CAs: its own (root 1) and a caller's (root 2, `frontend`), so a test
// can take root 2 out of the bundle and put it back and watch that caller's fate.

import http2 from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshCa, launchSidecar, type RunningSidecar } from './mesh.js';
import { startEchoApp } from './apps.js';

export interface TwoRootFiles {
  /** The sidecar's SVID (root 1): cert, key and its CA's bundle (root 1 alone). */
  readonly own: { cert: string; key: string; bundle: string };
  /** The caller's SVID, under root 2 alone (bundle: root 2). */
  readonly caller: { cert: string; key: string; bundle: string };
  /** Paths of the sidecar's identity files; the bundle starts as root 1 + root 2. */
  readonly files: { cert: string; key: string; bundle: string };
  readonly sidecar: RunningSidecar;
}

export async function startTwoRootFilesSidecar(t: { teardown(fn: () => unknown): void }, dir: string): Promise<TwoRootFiles> {
  const ca1 = await startMeshCa(join(dir, 'one'));
  t.teardown(() => ca1.stop());
  const ca2 = await startMeshCa(join(dir, 'two'));
  t.teardown(() => ca2.stop());
  const own = await ca1.issue('orders');
  const caller = await ca2.issue('frontend');
  const files = { cert: join(dir, 'svid.crt'), key: join(dir, 'svid.key'), bundle: join(dir, 'bundle.pem') };
  await writeFile(files.cert, own.cert);
  await writeFile(files.key, own.key, { mode: 0o600 });
  await writeFile(files.bundle, own.bundle + caller.bundle);
  const app = await startEchoApp();
  t.teardown(() => app.close());
  const sidecar = await (await launchSidecar(ca1, { service: 'orders', files, inbound: { app: `http://127.0.0.1:${app.port}` } })).ready();
  t.teardown(() => sidecar.stop('SIGKILL'));
  return { own, caller, files, sidecar };
}

/**
 * An HTTP/2 connection to the sidecar's inbound as the caller (root 2), trusting the sidecar
 * by `own.bundle`, closed with the test; `get()` asks GET / on it and resolves with the status.
 */
export function callerSession(t: { teardown(fn: () => unknown): void }, setup: TwoRootFiles): { session: http2.ClientHttp2Session; get: () => Promise<number> } {
  const { own, caller, sidecar } = setup;
  const session = http2.connect(`https://127.0.0.1:${sidecar.inboundPort}`, { cert: caller.cert, key: caller.key, ca: own.bundle, checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      req.on('error', reject);
      req.on('response', (head) => {
        req.resume();
        req.on('end', () => resolve(Number(head[':status'])));
      });
      req.end();
    });
  return { session, get };
}
