// A reload that cannot read its file because the sidecar is at its open-files limit (EMFILE) is
// aborted (503 reload_aborted: nothing is wrong with the file; reload again), not refused as an
// invalid config (400 config_invalid), and the running config is kept; once descriptors are free
// the same file reloads. The sidecar is a real process; its soft limit is lowered from outside
// (prlimit) to one descriptor above what it holds: the admin connection takes that one, and the
// file's read finds none.

import t from 'tap';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makePki } from './helpers/pki.js';
import { startMeshcar } from './helpers/process.js';

const run = promisify(execFile);

function post(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The lowest descriptor number `pid` has free: a soft limit of it + 1 leaves exactly that one. */
async function lowestFree(pid: number): Promise<number> {
  const open = new Set((await readdir(`/proc/${pid}/fd`)).map(Number));
  let fd = 0;
  while (open.has(fd)) fd++;
  return fd;
}

t.test('a reload at the open-files limit is aborted, not invalid; the same file reloads after', async (t) => {
  const dir = t.testdir();
  const pki = await makePki('mesh.test');
  const own = await pki.issue('spiffe://mesh.test/svc/orders');
  await writeFile(join(dir, 'svid.crt'), own.chainPem);
  await writeFile(join(dir, 'svid.key'), own.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), own.bundlePem);
  const config = join(dir, 'orders.yaml');
  await writeFile(config, [
    'service: orders',
    'trustDomain: mesh.test',
    `identity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}`,
    'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:9"}',
    'admin: {listen: "127.0.0.1:0"}',
    'log: {level: info}',
  ].join('\n'));
  const sidecar = startMeshcar(['run', '--config', config]);
  t.teardown(() => sidecar.stop());
  const ready = await sidecar.waitFor((line) => line.msg === 'admin listening');
  const adminPort = (ready.address as { port: number }).port;
  const pid = sidecar.child.pid as number;
  await sidecar.waitFor((line) => line.msg === 'sidecar ready');

  // the free descriptor is read, then the limit set by another process: one the sidecar opened or
  // closed meanwhile moves it (the reload then reads its file, or the admin connection is
  // refused), so a few tries; only the 503 passes
  let atLimit = { status: 0, body: '' };
  let from = 0;
  for (let tries = 0; tries < 5 && atLimit.status !== 503; tries++) {
    from = sidecar.lines.length;
    await run('prlimit', ['--pid', String(pid), `--nofile=${(await lowestFree(pid)) + 1}:`]);
    atLimit = await post(adminPort, '/reload').catch((err: Error) => ({ status: 0, body: err.message }));
    await run('prlimit', ['--pid', String(pid), '--nofile=4096:']);
  }
  t.equal(atLimit.status, 503, atLimit.body);
  const answer = JSON.parse(atLimit.body) as { error: string; message: string };
  t.equal(answer.error, 'reload_aborted');
  t.match(answer.message, /cannot read the config file: this process has no file descriptor left \(EMFILE\); the file was not read/);
  t.match(answer.message, /nothing was applied; reload again/);
  const failed = await sidecar.waitFor((line) => sidecar.lines.indexOf(line) >= from && line.msg === 'config reload failed; the running config is kept');
  t.equal(failed.issues, 1, 'the log counts one issue (the advice to reload again is none)');

  const after = await post(adminPort, '/reload');
  t.equal(after.status, 200, `the same file reloads once descriptors are free: ${after.body}`);
});
