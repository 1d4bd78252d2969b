// What a new user tripped over on the command line: `meshcar ca` lists its commands, `ca token
// --out` says what it wrote, a port in use names its listener (and nothing claims to listen
// after the failure), and the CA server survives SIGHUP and logs its shutdown.

import t from 'tap';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from './helpers/pki.js';
import { startMeshcar } from './helpers/process.js';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function occupiedPort(t: Tap.Test): Promise<number> {
  const server: Server = createServer();
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

t.test('meshcar ca and meshcar ca --help list the ca commands', async (t) => {
  const [bare, help] = await Promise.all([cli(['ca']), cli(['ca', '--help'])]);
  for (const result of [bare, help]) {
    for (const command of ['ca init', 'ca issue', 'ca token', 'ca serve']) t.match(result.stdout, `meshcar ${command} --`);
    t.notMatch(result.stderr, /unknown command/);
  }
  t.equal(help.code, 0);
  t.equal(bare.code, 2, 'no command given is a usage error, as for meshcar alone');
});

t.test('ca token --out says what it wrote', async (t) => {
  const dir = t.testdir();
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0);
  const out = await cli(['ca', 'token', '--dir', join(dir, 'ca'), '--service', 'orders', '--ttl', '8h', '--out', join(dir, 'orders.token')]);
  t.equal(out.code, 0, out.stderr);
  t.match(out.stdout, /^wrote a join token for service orders to .*orders\.token \(mode 0600\), valid for 8h\n$/);
});

t.test('a port in use names the listener; nothing says listening after the failure', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const taken = await occupiedPort(t);
  const config = (admin: string, outbound: string) =>
    `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
    `inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\noutbound: {listen: "${outbound}", upstreams: {orders: {endpoints: ["127.0.0.1:1"], identity: "spiffe://mesh.local/svc/orders"}}}\nadmin: {listen: "${admin}"}\n`;
  await writeFile(join(dir, 'outbound.yaml'), config('127.0.0.1:0', `127.0.0.1:${taken}`));
  await writeFile(join(dir, 'admin.yaml'), config(`127.0.0.1:${taken}`, '127.0.0.1:0'));
  for (const [file, listener] of [['outbound.yaml', 'outbound'], ['admin.yaml', 'admin']] as const) {
    const proc = startMeshcar(['run', '--config', join(dir, file)]);
    t.equal(await proc.exited(), 1, `${listener}: exit 1`);
    t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
    t.match(proc.stderr[0], new RegExp(`^meshcar: ${listener} cannot listen on 127\\.0\\.0\\.1:${taken} \\(${listener}\\.listen\\): .*EADDRINUSE`));
    const fatal = proc.lines.findIndex((line) => /could not start/.test(String(line.msg)));
    t.ok(fatal >= 0, 'the log says why it stops');
    t.notOk(proc.lines.slice(fatal).some((line) => /listening/.test(String(line.msg))), `no "listening" line after the failure: ${JSON.stringify(proc.lines.slice(fatal).map((l) => l.msg))}`);
  }
});

t.test('the CA server survives SIGHUP, and logs draining and stopped', async (t) => {
  const dir = t.testdir();
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0);
  await writeFile(join(dir, 'ca.yaml'), `trustDomain: mesh.local\ndir: ${join(dir, 'ca')}\nlisten: 127.0.0.1:0\n`);
  const ca = startMeshcar(['ca', 'serve', '--config', join(dir, 'ca.yaml')]);
  t.teardown(() => ca.stop('SIGKILL'));
  await ca.waitFor((line) => line.msg === 'CA server listening');
  ca.child.kill('SIGHUP');
  await ca.waitFor((line) => /SIGHUP ignored/.test(String(line.msg)) && line.level === 40);
  t.equal(ca.child.exitCode, null, 'still running');
  t.equal(await ca.stop('SIGTERM'), 0);
  const messages = ca.lines.map((line) => line.msg);
  t.ok(messages.indexOf('draining: no new connections, requests in flight finish') < messages.indexOf('stopped'), 'draining, then stopped');
  t.not(messages.indexOf('stopped'), -1);
});
