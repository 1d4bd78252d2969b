// Test helper: a sidecar config (service orders, trust domain mesh.local) whose identity comes
// from the CA at https://127.0.0.1:PORT with `bundlePem` as identity.ca.bundle, in a test
// folder of its own: what doctor's CA check reads (test/doctor).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function caUrlConfig(t: Tap.Test, port: number, bundlePem: string): Promise<string> {
  const dir = t.testdir({ 'bundle.pem': bundlePem });
  const file = join(dir, 'orders.yaml');
  await writeFile(file, `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:${port}", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, 'identity')}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`);
  return file;
}
