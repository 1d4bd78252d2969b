// Node's own floor at a paced load: the CPU a bare Node echo server spends per message when
// messages come one at a time (1,000 a second over 10 connections), so each wakes the process
// from idle, as a sidecar's requests do at light load. Two servers, each a child process doing
// nothing but echo: plain TCP, and TLS (ECDSA P-256, TLS 1.3). The child measures its own CPU
// (process.cpuUsage) and voluntary context switches (wake-ups) over the paced window. A sidecar
// pair handles each request in at least four such wake-ups (each sidecar: the request in, the
// answer back), so four times the TLS figure is what Node charges a pair before any proxying.
// Three rounds of each, alternated. Every target is 127.0.0.1; each round is bounded in time.
//   node bench/paced-floor.mjs          (needs openssl for the throw-away certificate)

import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

const RATE = 1000;
const SECONDS = 5;
const CONNECTIONS = 10;
const ROUNDS = 3;

function serve(kind, keyPath, certPath) {
  const echo = (socket) => {
    socket.setNoDelay(true);
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => {});
  };
  const server = kind === 'tls' ? tls.createServer({ key: readFileSync(keyPath), cert: readFileSync(certPath) }, echo) : net.createServer(echo);
  const wakeups = () => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  let start;
  process.on('message', (m) => {
    if (m === 'start') start = { cpu: process.cpuUsage(), wakeups: wakeups() };
    if (m === 'stop') {
      const cpu = process.cpuUsage(start.cpu);
      process.send({ cpuUs: cpu.user + cpu.system, wakeups: wakeups() - start.wakeups });
      process.exit(0);
    }
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

async function round(kind, keyPath, certPath) {
  const child = fork(new URL(import.meta.url).pathname, ['serve', kind, keyPath, certPath]);
  const next = () => new Promise((resolve) => child.once('message', resolve));
  const { port } = await next();
  const connect = () =>
    new Promise((resolve, reject) => {
      const socket = kind === 'tls' ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(socket)) : net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
      socket.setNoDelay(true);
      socket.on('data', () => {});
      socket.on('error', reject);
    });
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, connect));
  const message = Buffer.alloc(100, 'a');
  // a warm-up second, then the measured window
  for (const [measured, seconds] of [[false, 1], [true, SECONDS]]) {
    if (measured) child.send('start');
    let sent = 0;
    const started = Date.now();
    await new Promise((done) => {
      const tick = setInterval(() => {
        const due = Math.min(Math.floor(((Date.now() - started) * RATE) / 1000), RATE * seconds);
        while (sent < due) sockets[sent++ % CONNECTIONS].write(message);
        if (sent >= RATE * seconds) {
          clearInterval(tick);
          setTimeout(done, 100);
        }
      }, 1);
    });
    if (measured) {
      child.send('stop');
      const { cpuUs, wakeups } = await next();
      for (const socket of sockets) socket.destroy();
      return { cpuPerMessage: cpuUs / sent, wakeupsPerMessage: wakeups / sent };
    }
  }
}

if (process.argv[2] === 'serve') serve(process.argv[3], process.argv[4], process.argv[5]);
else {
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-paced-floor-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=paced-floor'], { stdio: 'ignore' });
    console.log(`echo server, ${RATE} messages/s of 100 bytes over ${CONNECTIONS} connections, ${SECONDS} s per round; server CPU and wake-ups per message`);
    const results = { tcp: [], tls: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const kind of ['tcp', 'tls']) results[kind].push(await round(kind, keyPath, certPath));
    }
    for (const [kind, rows] of Object.entries(results)) {
      const cpu = rows.map((r) => r.cpuPerMessage.toFixed(1)).join(', ');
      const wake = rows.map((r) => r.wakeupsPerMessage.toFixed(2)).join(', ');
      console.log(`${kind.padEnd(4)} CPU µs/message: ${cpu}   wake-ups/message: ${wake}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
