// Test helper: a real Sidecar in this process for the service `orders`, its SVID from a test
// PKI given as `identity.files`, its inbound in front of an echo app, an admin port, and its
// log lines kept: the sidecar the TLS failure tests (test/tls-failures) send hostile callers to.

import http from 'node:http';
import tls from 'node:tls';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestPki } from './pki.js';
import type { SvidMaterial } from '../../src/identity/svid.js';
import { memoryLogger } from './ca.js';
import { startEchoApp } from './apps.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';

export interface FilesSidecar {
  readonly sidecar: Sidecar;
  readonly inboundPort: number;
  readonly adminPort: number;
  /** Its log lines, as written. */
  readonly lines: Array<Record<string, unknown>>;
  /** An admin answer's raw bytes (as curl would print them). */
  adminGet(path: string): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Starts it with its files and config in `dir`; `inboundHost` 0.0.0.0 takes callers from any
 * loopback address; `own`: the files' key, chain and bundle (default: a 1 h SVID from `pki`).
 */
export async function startFilesSidecar(pki: TestPki, dir: string, inboundHost = '127.0.0.1', own?: SvidMaterial): Promise<FilesSidecar> {
  own ??= await pki.issue(`spiffe://${pki.trustDomain}/svc/orders`);
  const app = await startEchoApp();
  const file = (name: string) => join(dir, name);
  await writeFile(file('svid.crt'), own.chainPem);
  await writeFile(file('svid.key'), own.privateKeyPem, { mode: 0o600 });
  await writeFile(file('bundle.pem'), own.bundlePem);
  await writeFile(
    file('orders.yaml'),
    [
      'service: orders',
      `trustDomain: ${pki.trustDomain}`,
      `identity: {files: {cert: ${file('svid.crt')}, key: ${file('svid.key')}, bundle: ${file('bundle.pem')}}}`,
      `inbound: {listen: "${inboundHost}:0", app: "http://127.0.0.1:${app.port}"}`,
      'admin: {listen: "127.0.0.1:0"}',
      'log: {level: info, access: false}',
    ].join('\n'),
  );
  const lines: Array<Record<string, unknown>> = [];
  const sidecar = new Sidecar(await loadSidecarConfig(file('orders.yaml')), memoryLogger(lines));
  const addresses = await sidecar.start().catch(async (err: unknown) => {
    await app.close();
    throw err;
  });
  const adminPort = addresses.admin.port;
  return {
    sidecar,
    inboundPort: addresses.inbound?.port as number,
    adminPort,
    lines,
    adminGet: (path) =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: adminPort, path, agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          })
          .on('error', reject);
      }),
    close: async () => {
      await sidecar.stop();
      await app.close();
    },
  };
}

/**
 * A TLS client without a certificate from `localAddress` (any loopback address: a caller of its
 * own to the inbound's per-address limits); resolves once the server has closed it. TLS 1.3:
 * the refusal comes after the client's Finished, as an alert on the first read.
 */
export function refusedFrom(port: number, localAddress: string, ca: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, localAddress, ca, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
