// A dual-stack name seen from a host with IPv6 disabled (Docker's default for containers): the
// AAAA answers cannot be connected to (EADDRNOTAVAIL at once, the error of a local port
// shortage) and are left out of the endpoint set, with one info line; every request is served
// by the IPv4 address. They used to stay in: one request in five or so was answered 503 after
// drawing three of them, and the log blamed "a local shortage". Needs a network namespace with
// its own /etc/hosts and IPv6 off, so the outbound runs in a child process there
// (test/fixtures/no-ipv6-outbound.ts) and resolves with the real getaddrinfo; meshcar doctor's
// upstream checks, run there too, skip those addresses (they were ✗ EADDRNOTAVAIL).

import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsUnavailable, TestNetwork } from '../helpers/netns.js';
import { transpileFixture } from '../helpers/transpiled-fixture.js';

const FIXTURE = new URL('../fixtures/no-ipv6-outbound.ts', import.meta.url).pathname;

interface Report {
  readonly statuses: number[];
  readonly endpoints: string[];
  readonly lines: Array<{ level: number; msg: string }>;
  readonly doctor: Array<{ name: string; status: string; message: string }>;
}

t.test('AAAA answers are left out on a host without IPv6; every request is served', async (t) => {
  const unavailable = await netnsUnavailable();
  if (unavailable) return t.skip(unavailable);
  const net = new TestNetwork();
  const onExit = () => net.cleanupSync();
  process.once('exit', onExit);
  const base = await mkdtemp(join(tmpdir(), 'meshcar-no-ipv6-'));
  t.teardown(async () => {
    await net.cleanup();
    process.off('exit', onExit);
    await rm(base, { recursive: true, force: true });
  });
  const script = await transpileFixture(FIXTURE, base);
  await net.create();
  await net.addHost('h1', '198.51.100.2', { nameserver: '127.0.0.1' });
  // three IPv6 addresses and one IPv4 (the upstream listens on 127.0.0.1 in the namespace)
  await writeFile(`/etc/netns/${net.ns('h1')}/hosts`, ['127.0.0.1 localhost', '2001:db8::9 dual.test', '2001:db8::a dual.test', '2001:db8::b dual.test', '127.0.0.1 dual.test', ''].join('\n'));
  // as `sysctl net.ipv6.conf.all.disable_ipv6=1` would, without needing procps
  await net.exec('h1', 'sh', ['-c', 'for c in all default lo; do echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6; done']);

  const child = net.spawn('h1', process.execPath, [script]);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, `the child ran to the end ${stderr.slice(-500)}`);
  const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Report;
  t.same(report.statuses, Array(20).fill(200), 'every request served');
  t.same(report.endpoints.map((e) => e.replace(/:\d+$/, '')), ['127.0.0.1'], 'only the IPv4 address is an endpoint');
  t.notOk(report.lines.some((l) => /shortage/.test(l.msg)), 'no local shortage is logged');
  t.equal(report.lines.filter((l) => /left out addresses/.test(l.msg)).length, 1, 'the addresses left out are said once');
  // meshcar doctor checks the addresses the sidecar uses, for dns:NAME:PORT and NAME:PORT alike:
  // the IPv4 one passes, the others are skipped, none fails
  const doctor = JSON.stringify(report.doctor.map((r) => `${r.status} ${r.name}: ${r.message}`));
  t.same(report.doctor.map((r) => r.status).sort(), ['ok', 'ok', 'skip', 'skip', 'skip', 'skip', 'skip', 'skip'], doctor);
  t.equal(report.doctor.filter((r) => r.name.startsWith(`upstream payments dual.test:`)).length, 4, `the plain name's addresses each checked ${doctor}`);
});
