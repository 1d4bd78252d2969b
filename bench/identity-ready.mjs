// Time from sidecar start to ready (identity loaded, listeners bound) against a running CA:
// first start (key generated, CSR, join token, SVID validated) and restart (SVID reused from
// disk). Usage: node bench/identity-ready.mjs [runs=20]

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initCaDirectory } from '../dist/ca/store.js';
import { caServe, caToken } from '../dist/ca/commands.js';
import { loadSidecarConfig } from '../dist/config/sidecar-config.js';
import { Sidecar } from '../dist/sidecar.js';

const runs = Number(process.argv[2] ?? 20);
const quiet = pino({ level: 'silent' });
const root = await mkdtemp(join(tmpdir(), 'meshcar-ready-'));
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
try {
  const caDir = join(root, 'ca');
  await initCaDirectory(caDir, 'mesh.local', { force: false });
  const ca = await caServe({ file: 'x', trustDomain: 'mesh.local', dir: caDir, listen: { host: '127.0.0.1', port: 0 }, serverNames: ['127.0.0.1'], maxTtlMs: 86_400_000, defaultTtlMs: 86_400_000, rateLimit: { perSecond: 1e6, burst: 1e6 }, log: { level: 'silent' } }, quiet);
  const token = join(root, 'orders.token');
  await writeFile(token, await caToken(caDir, 'orders', 3_600_000, false));
  const timings = { first: [], restart: [] };
  for (let i = 0; i < runs; i++) {
    const file = join(root, `s${i}.yaml`);
    await writeFile(file, `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: ${ca.url}, bundle: ${join(caDir, 'bundle.pem')}, token: ${token}}\n  dir: ${join(root, `id${i}`)}\ninbound: {listen: 127.0.0.1:0, app: http://127.0.0.1:9}\nadmin: {listen: 127.0.0.1:0}\nlog: {level: silent, access: false}\n`);
    const config = await loadSidecarConfig(file);
    for (const kind of ['first', 'restart']) {
      const sidecar = new Sidecar(config, quiet);
      await sidecar.start();
      timings[kind].push(sidecar.readyAfterMs);
      await sidecar.stop();
    }
  }
  for (const [kind, values] of Object.entries(timings)) {
    values.sort((a, b) => a - b);
    console.log(`${kind === 'first' ? 'first start (token → SVID)' : 'restart (SVID from disk)  '}  median ${percentile(values, 50).toFixed(1)} ms   p99 ${percentile(values, 99).toFixed(1)} ms   (${values.length} runs)`);
  }
  await ca.close();
} finally {
  await rm(root, { recursive: true, force: true });
}
