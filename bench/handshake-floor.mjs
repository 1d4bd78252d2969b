// Node's own floor for new mTLS connections: the inbound CPU per handshake of a bare Node
// tls.Server set up as meshcar's inbound is (client certificate required and verified, no
// session tickets, ALPN h2 and http/1.1, leaf + issuer presented), beside a `meshcar run`
// inbound, with the same certificates from a throw-away meshcar CA and the same client:
// `openssl s_time -new` for 5 s (a full handshake per connection, one at a time, as the peer
// harness measures it). Each server's CPU is read from /proc/PID/stat around the run; the
// accepted handshakes are counted on the server (the bare one counts them itself, meshcar's
// handshake failure counter must stay at 0), so a client that fails its handshakes is not
// measured as a fast one. Three rounds of each, alternated. Every target is 127.0.0.1.
//   node bench/handshake-floor.mjs      (after make build; needs openssl)

import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants } from 'node:crypto';
import tls from 'node:tls';

const SECONDS = 5;
const ROUNDS = 3;
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime + stime
};

function sTime(port, dir) {
  const out = execFileSync('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(SECONDS), '-cert', join(dir, 'client/svid.crt'), '-key', join(dir, 'client/svid.key'), '-CAfile', join(dir, 'client-chain.pem')], { encoding: 'utf8', timeout: (SECONDS + 15) * 1000 });
  const m = /(\d+) connections in ([\d.]+)s/.exec(out);
  if (!m) throw new Error(`openssl s_time printed no count:\n${out}`);
  return Number(m[1]);
}

function getText(port, path) {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

async function bareRound(dir) {
  const child = fork(new URL(import.meta.url).pathname, ['bare', dir], { stdio: 'ignore' });
  const [{ port }] = await once(child, 'message');
  const before = cpuMs(child.pid);
  const connections = sTime(port, dir);
  const used = cpuMs(child.pid) - before;
  child.send('count');
  const [{ accepted }] = await once(child, 'message');
  child.kill();
  return { connections, accepted, msPerHandshake: used / accepted };
}

async function meshcarRound(dir) {
  const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'inbound.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const ready = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`meshcar run exited ${code}`)));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      text += d;
      const line = text.split('\n').find((l) => l.includes('"sidecar ready"'));
      if (line) resolve(JSON.parse(line));
    });
  });
  const adminPort = Number(/"msg":"admin listening"/.test(text) ? JSON.parse(text.split('\n').find((l) => l.includes('"admin listening"'))).address.port : 0);
  const before = cpuMs(child.pid);
  const connections = sTime(ready.inbound.port, dir);
  const used = cpuMs(child.pid) - before;
  const metrics = await getText(adminPort, '/metrics');
  const failed = [...metrics.matchAll(/^meshcar_tls_handshake_failures_total\{direction="inbound"[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  child.kill('SIGTERM');
  await once(child, 'exit');
  if (failed > 0) throw new Error(`meshcar counted ${failed} failed handshakes: the client is not set up right`);
  return { connections, msPerHandshake: used / connections };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-hs-floor-'));
  try {
    execFileSync(process.execPath, [CLI, 'ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local']);
    for (const service of ['server', 'client']) execFileSync(process.execPath, [CLI, 'ca', 'issue', '--dir', join(dir, 'ca'), '--service', service, '--out', join(dir, service)]);
    // s_time sends only the first certificate of -cert; OpenSSL adds the issuer to what the
    // client presents when its verify store holds it: the bundle plus the issuer
    const issuer = readFileSync(join(dir, 'client/svid.crt'), 'utf8').split(/(?=-----BEGIN CERTIFICATE-----)/)[1];
    writeFileSync(join(dir, 'client-chain.pem'), readFileSync(join(dir, 'client/bundle.pem'), 'utf8') + issuer);
    writeFileSync(join(dir, 'inbound.yaml'), [
      'service: server',
      'trustDomain: mesh.local',
      `identity: {files: {cert: ${join(dir, 'server/svid.crt')}, key: ${join(dir, 'server/svid.key')}, bundle: ${join(dir, 'server/bundle.pem')}}}`,
      'inbound: {listen: 127.0.0.1:0, app: http://127.0.0.1:9}',
      'admin: {listen: 127.0.0.1:0}',
      'log: {level: info, access: false}',
      '',
    ].join('\n'));
    const rows = { bare: [], meshcar: [] };
    for (let round = 0; round < ROUNDS; round++) {
      rows.bare.push(await bareRound(dir));
      rows.meshcar.push(await meshcarRound(dir));
    }
    for (const [name, list] of Object.entries(rows)) {
      const per = list.map((r) => r.msPerHandshake.toFixed(3)).join(' / ');
      const rate = list.map((r) => Math.round(r.connections / SECONDS)).join(' / ');
      console.log(`${name.padEnd(8)} inbound CPU ms per handshake ${per}; handshakes/s ${rate}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'bare') {
  // the child: a bare Node mTLS server, counting the handshakes it accepted
  const [, , , dir] = process.argv;
  let accepted = 0;
  const server = tls.createServer({
    key: readFileSync(join(dir, 'server/svid.key')),
    cert: readFileSync(join(dir, 'server/svid.crt')),
    ca: readFileSync(join(dir, 'server/bundle.pem')),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    secureOptions: constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION,
    ALPNProtocols: ['h2', 'http/1.1'],
  }, (socket) => {
    accepted++;
    socket.on('error', () => {});
    socket.resume();
  });
  server.on('tlsClientError', () => {});
  process.on('message', () => process.send({ accepted }));
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
} else {
  await main();
}
