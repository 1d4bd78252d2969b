// CA signing benchmark: certificates per second and sign latency (p50/p99), first for the
// issuance pipeline alone (CSR parse + proof-of-possession check + sign), then through the
// HTTPS API with keep-alive clients. Run pinned to one core by `make bench-ca`.
// Usage: node bench/ca-sign.mjs [count=2000] [concurrency=16]

import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { pino } from 'pino';
import { initCaDirectory } from '../dist/ca/store.js';
import { openAuthority, caServe } from '../dist/ca/commands.js';
import { generateWorkloadKey } from '../dist/pki/keys.js';
import { buildCsr } from '../dist/pki/csr.js';

const count = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);
const ID = 'spiffe://mesh.local/svc/bench';

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(label, task) {
  const latencies = [];
  let next = 0;
  const started = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await task(i);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  latencies.sort((a, b) => a - b);
  console.log(`${label.padEnd(34)} ${(count / seconds).toFixed(0).padStart(6)} certs/s   p50 ${percentile(latencies, 50).toFixed(2)} ms   p99 ${percentile(latencies, 99).toFixed(2)} ms   CPU ${(((cpu.user + cpu.system) / 1000) / count).toFixed(2)} ms/cert`);
}

const root = await mkdtemp(join(tmpdir(), 'meshcar-bench-'));
try {
  const dir = join(root, 'ca');
  await initCaDirectory(dir, 'mesh.local', { force: false });
  const keys = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ID);
  const authority = await openAuthority(dir, { maxTtlMs: 86_400_000, defaultTtlMs: 86_400_000 });
  const grant = authority.grantFromCertificate(ID);
  console.log(`meshcar CA signing: ${count} certificates, ${concurrency} concurrent, ECDSA P-256 issuer`);
  await run('pipeline (CSR check + sign)', () => authority.sign(grant, csr));

  const server = await caServe({
    file: 'bench', trustDomain: 'mesh.local', dir, listen: { host: '127.0.0.1', port: 0 }, serverNames: ['localhost'],
    maxTtlMs: 86_400_000, defaultTtlMs: 86_400_000, rateLimit: { perSecond: 1e9, burst: 1e9 }, log: { level: 'silent' },
  }, pino({ level: 'silent' }));
  const token = authority.createToken(ID, 3_600_000, false);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: authority.material.bundlePem });
  const body = JSON.stringify({ csr });
  await run('HTTPS POST /v1/sign (keep-alive)', () => new Promise((resolve, reject) => {
    const req = request(`${server.url}/v1/sign`, { method: 'POST', agent, servername: 'localhost', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  }));
  agent.destroy();
  await server.close();
} finally {
  await rm(root, { recursive: true, force: true });
}
