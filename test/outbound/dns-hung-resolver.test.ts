// Upstream names whose resolver never answers, with the system resolver (getaddrinfo) for real:
// a sidecar in a network namespace of its own whose resolv.conf names a resolver that reads
// every query and answers none (each lookup hangs for resolv.conf's whole timeout), and whose
// /etc/hosts holds `localhost` and one upstream name. libuv lets lookups hold at most half its
// thread pool (2 of Node's default 4 threads), and three hung upstream names used to hold both:
// - the inbound's app, named `http://localhost:PORT`, got no new connection (its connect is a
//   lookup too) until a hung lookup gave its thread up, 15 s here (src/name-lookups.ts
//   now keeps one thread for the rest of the process; run as `node dist/cli.js`, 4 threads);
// - a name /etc/hosts answers waited as long (the `meshcar` launcher now gives the pool 16
//   threads, so lookups have 8, and hung names take at most 6 of them; run as `dist/cli.js`).

import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshCa } from '../helpers/mesh.js';
import { netnsUnavailable, SUBNET_PREFIX as NET, TestNetwork } from '../helpers/netns.js';
import { LineWatch } from '../helpers/netns-mesh.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
/** How long each hung lookup holds its thread (resolv.conf's timeout, one attempt). */
const HANG_S = 15;

const skip = await netnsUnavailable();
if (skip) t.fail(`network namespaces are needed for this test and unavailable: ${skip}`);
else {
  const net = new TestNetwork();
  process.once('exit', () => net.cleanupSync());
  t.teardown(() => net.cleanup());
  await TestNetwork.sweepStale();
  await net.create();
  await net.addHost('h1', `${NET}11`, { nameserver: '127.0.0.1' });
  const etc = `/etc/netns/${net.ns('h1')}`;
  await writeFile(join(etc, 'resolv.conf'), `nameserver 127.0.0.1\noptions timeout:${HANG_S} attempts:1\n`);
  await writeFile(join(etc, 'hosts'), '127.0.0.1 localhost\n127.0.0.1 good.mesh.test\n');

  // the resolver that never answers, and the app, inside the host
  const silent = new LineWatch(net.spawn('h1', process.execPath, ['-e', "const s = require('dgram').createSocket('udp4'); s.on('message', () => {}); s.bind(53, '127.0.0.1', () => console.log('bound'))"]));
  await silent.waitFor(/bound/, 10_000);
  const app = new LineWatch(net.spawn('h1', process.execPath, ['-e', "require('http').createServer((q, s) => s.end('app')).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port) })"]));
  const appPort = Number(/port (\d+)/.exec((await app.waitFor(/port \d+/, 10_000)).text)?.[1]);

  const ca = await startMeshCa(t.testdir());
  t.teardown(() => ca.stop());
  const svid = await ca.issue('orders');
  const caller = await ca.issue('frontend');

  /** The head of a config of service orders in h1: its SVID files, an inbound to `app`, an outbound listener. */
  const configHead = (app: string): string[] => [
    'service: orders',
    'trustDomain: mesh.local',
    'identity:',
    `  files: {cert: ${join(svid.dir, 'svid.crt')}, key: ${join(svid.dir, 'svid.key')}, bundle: ${join(svid.dir, 'bundle.pem')}}`,
    'inbound:',
    '  listen: 127.0.0.1:0',
    `  app: ${app}`,
    'outbound:',
    '  listen: 127.0.0.1:0',
  ];

  /** A sidecar inside h1 with three hung upstream names and good.mesh.test; its ports once ready. */
  async function sidecar(name: string, command: string, args: readonly string[]): Promise<{ admin: number; inbound: number; log: LineWatch }> {
    const file = join(ca.dir, `${name}.yaml`);
    await writeFile(file, [
      ...configHead(`http://localhost:${appPort}`),
      '  dnsRefresh: 1s',
      '  upstreams:',
      ...['hung1', 'hung2', 'hung3', 'good'].flatMap((u) => [`    ${u}:`, `      endpoints: [dns:${u}.mesh.test:8443]`, `      identity: spiffe://mesh.local/svc/${u}`]),
      'admin:',
      '  listen: 127.0.0.1:0',
      'log:',
      '  level: info',
      '',
    ].join('\n'));
    const log = new LineWatch(net.spawn('h1', command, [...args, 'run', '--config', file]));
    const ready = JSON.parse((await log.waitFor(/"msg":"sidecar ready"/, 30_000)).text) as { inbound: { port: number } };
    const admin = JSON.parse((await log.waitFor(/"msg":"admin listening"/, 1_000)).text) as { address: { port: number } };
    return { admin: admin.address.port, inbound: ready.inbound.port, log };
  }

  /** Seconds curl took for one mTLS request to the inbound from inside h1, and its status. */
  async function callInbound(port: number): Promise<{ status: string; seconds: number }> {
    const out = await net.exec('h1', 'curl', ['-sk', '--max-time', String(HANG_S + 5), '-o', '/dev/null', '-w', '%{http_code} %{time_total}',
      '--cert', join(caller.dir, 'svid.crt'), '--key', join(caller.dir, 'svid.key'), `https://127.0.0.1:${port}/`]).catch((err: { stdout?: string }) => err.stdout ?? '000 99');
    const [status, seconds] = out.trim().split(' ');
    return { status: status as string, seconds: Number(seconds) };
  }

  async function goodAddresses(admin: number): Promise<string[]> {
    const view = JSON.parse(await net.exec('h1', 'curl', ['-s', `http://127.0.0.1:${admin}/upstreams`])) as { upstreams: Array<{ name: string; addresses: Array<{ address: string }> }> };
    return view.upstreams.find((u) => u.name === 'good')?.addresses.map((a) => a.address) ?? [];
  }

  t.test('with the 4 threads of Node by default, the app named localhost still gets a connection while three names hang', { timeout: 60_000 }, async (t) => {
    const { inbound } = await sidecar('four-threads', process.execPath, ['--max-semi-space-size=4', CLI]);
    // the three hung lookups started before ready (the outbound waits up to 2 s for first answers)
    const call = await callInbound(inbound);
    t.equal(call.status, '200', 'the request reached the app');
    t.ok(call.seconds < 5, `in ${call.seconds} s (a hung lookup holds its thread ${HANG_S} s)`);
  });

  t.test('with the launcher, a name /etc/hosts answers resolves while three names hang', { timeout: 60_000 }, async (t) => {
    const started = Date.now();
    const { admin, inbound } = await sidecar('launcher', CLI, []);
    let addresses: string[] = [];
    while ((addresses = await goodAddresses(admin)).length === 0 && Date.now() - started < 8_000) await sleep(200); // the poll's pace
    t.same(addresses, ['127.0.0.1:8443'], `good.mesh.test resolved in ${Date.now() - started} ms`);
    const call = await callInbound(inbound);
    t.equal(call.status, '200', 'the app is reached too');
    t.ok(call.seconds < 5, `in ${call.seconds} s`);
  });

  t.test('a CA named by a hung name: its lookups, however often it is polled, leave the app named localhost a thread', { timeout: 90_000 }, async (t) => {
    // a host of its own, whose hung lookups last 30 s: a poll's lookup outlives the next poll
    // (each CA request gives up at 10 s), so two polls held both of Node's lookup threads
    await net.addHost('h2', `${NET}12`, { nameserver: '127.0.0.1' });
    const etc2 = `/etc/netns/${net.ns('h2')}`;
    await writeFile(join(etc2, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:30 attempts:1\n');
    const silent2 = new LineWatch(net.spawn('h2', process.execPath, ['-e', "const s = require('dgram').createSocket('udp4'); s.on('message', () => {}); s.bind(53, '127.0.0.1', () => console.log('bound'))"]));
    await silent2.waitFor(/bound/, 10_000);
    const app2 = new LineWatch(net.spawn('h2', process.execPath, ['-e', "require('http').createServer((q, s) => s.end('app')).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port) })"]));
    const app2Port = Number(/port (\d+)/.exec((await app2.waitFor(/port \d+/, 10_000)).text)?.[1]);
    const file = join(ca.dir, 'ca-by-name.yaml');
    await writeFile(file, [
      'service: orders',
      'trustDomain: mesh.local',
      'identity:',
      `  ca: {url: "https://ca.mesh.test:8443", bundle: ${ca.bundlePath}, bundleRefresh: 100ms}`,
      `  dir: ${svid.dir}`,
      'inbound:',
      '  listen: 127.0.0.1:0',
      `  app: http://localhost:${app2Port}`,
      'admin:',
      '  listen: 127.0.0.1:0',
      'log:',
      '  level: info',
      '',
    ].join('\n'));
    const log = new LineWatch(net.spawn('h2', process.execPath, ['--max-semi-space-size=4', CLI, 'run', '--config', file]));
    // the start's bundle fetch gives up at 10 s and the sidecar goes on with its stored SVID
    const ready = JSON.parse((await log.waitFor(/"msg":"sidecar ready"/, 30_000)).text) as { inbound: { port: number } };
    // a poll after the start's: before, its lookup took the second thread while the first still hung
    await log.waitFor(/could not fetch the CA's trust bundle, keeping the current one/, 15_000);
    const out = await net.exec('h2', 'curl', ['-sk', '--max-time', '25', '-o', '/dev/null', '-w', '%{http_code} %{time_total}',
      '--cert', join(caller.dir, 'svid.crt'), '--key', join(caller.dir, 'svid.key'), `https://127.0.0.1:${ready.inbound.port}/`]).catch((err: { stdout?: string }) => err.stdout ?? '000 99');
    const [status, seconds] = out.trim().split(' ');
    t.equal(status, '200', 'the request reached the app');
    t.ok(Number(seconds) < 5, `in ${seconds} s (a hung lookup holds its thread 30 s)`);
  });

  t.test("doctor --timeout 1s: an upstream's hung name is a ✗ within the bound, and doctor ends then", { timeout: 60_000 }, async (t) => {
    const file = join(ca.dir, 'doctor.yaml');
    await writeFile(file, [
      ...configHead(`http://hungapp.mesh.test:${appPort}`),
      '  upstreams:',
      // eight hung names: as many as the lookup helper's threads (a name /etc/hosts answers was
      // reported unresolved when they held them all)
      ...Array.from({ length: 8 }, (_, i) => [`    hung${i + 1}:`, `      endpoints: [dns:hung${i + 1}.mesh.test:8443]`, `      identity: spiffe://mesh.local/svc/hung${i + 1}`]).flat(),
      '    good:',
      '      endpoints: [dns:good.mesh.test:1]',
      '      identity: spiffe://mesh.local/svc/good',
      '',
    ].join('\n'));
    const started = Date.now();
    const doctor = net.spawn('h1', process.execPath, [CLI, 'doctor', '--config', file, '--timeout', '1s']);
    let out = '';
    doctor.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => doctor.once('exit', resolve));
    const seconds = (Date.now() - started) / 1000;
    t.equal(code, 1, 'doctor fails');
    t.match(out, /✗ upstream hung1 dns:hung1\.mesh\.test:8443: .*did not resolve within 1000 ms/, 'the hung name is named, with the bound');
    t.match(out, /✗ upstream good dns:good\.mesh\.test:1 → 127\.0\.0\.1:1: nothing listening/, 'the name /etc/hosts answers resolved, and its dial says so');
    t.ok(seconds < 8, `doctor ended in ${seconds} s (a hung lookup holds its thread ${HANG_S} s)`);
  });
}
