// Test helper for the config warnings (connectTimeout, SPIFFE IDs no sidecar carries): the two
// places a user meets them, `meshcar check` on stderr and a running sidecar's log (at start, and
// at POST /reload), read from real processes.

import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestPki } from './pki.js';
import { startMeshcar, type MeshcarProcess } from './process.js';

/**
 * Writes `dir`/orders.yaml: service `orders` with an SVID from `pki` in `identity.files`, an
 * admin port, and `sides` (YAML lines: the inbound and outbound sections); returns its path.
 */
export async function writeOrdersConfig(dir: string, pki: TestPki, sides: string[]): Promise<string> {
  const own = await pki.issue(`spiffe://${pki.trustDomain}/svc/orders`);
  const file = (name: string) => join(dir, name);
  await writeFile(file('svid.crt'), own.chainPem);
  await writeFile(file('svid.key'), own.privateKeyPem, { mode: 0o600 });
  await writeFile(file('bundle.pem'), pki.bundlePem);
  const config = file('orders.yaml');
  const identity = `identity: {files: {cert: ${file('svid.crt')}, key: ${file('svid.key')}, bundle: ${file('bundle.pem')}}}`;
  await writeFile(config, ['service: orders', `trustDomain: ${pki.trustDomain}`, identity, ...sides, 'admin: {listen: "127.0.0.1:0"}', ''].join('\n'));
  return config;
}

/** `meshcar check --config FILE`: its exit status, stdout's messages, stderr's lines. */
export async function check(file: string): Promise<{ status: number | null; stdout: string; stderr: string[] }> {
  const proc = startMeshcar(['check', '--config', file]);
  const status = await proc.exited();
  return { status, stdout: proc.lines.map((line) => String(line.msg)).join('\n'), stderr: proc.stderr };
}

/** POST /reload on an admin port: the status. */
export function postReload(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The config warnings a sidecar logged from line `from` on. */
export const warningsIn = (proc: MeshcarProcess, from: number): string[] =>
  proc.lines
    .slice(from)
    .filter((line) => line.level === 40 && line.component === 'config')
    .map((line) => String(line.msg));
