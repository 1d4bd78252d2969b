// meshcar doctor's probes were bounded by a fixed 3 s. `--timeout` now sets each probe's bound
// (a dial, an answer, a PING), and an upstream's dial keeps to the sidecar's own bound for it
// (its connectTimeout, or a shorter timeout) when that is shorter: a peer too slow for the
// sidecar is too slow for doctor. The line that runs out says which bound it was and how to
// give more. Real doctor runs (the CLI) against real servers on loopback that accept TCP and
// never answer.

import t from 'tap';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listening } from '../helpers/raw-http.js';
import { makePki } from '../helpers/pki.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** A server that takes connections and never says a word (a hung process). */
const silent = () => net.createServer(() => undefined);

/** A sidecar config for frontend: SVID files, one upstream `orders` at `upstreamPort` (with `extra` keys), an app, an admin port. */
async function config(t: Tap.Test, upstreamPort: number, extra: string, appPort: number): Promise<string> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/frontend');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  await chmod(join(dir, 'svid.key'), 0o600);
  const file = join(dir, 'frontend.yaml');
  await writeFile(
    file,
    `service: frontend\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
      `inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:${appPort}"}\n` +
      `outbound: {listen: "127.0.0.1:0", upstreams: {orders: {endpoints: ["127.0.0.1:${upstreamPort}"], identity: "spiffe://mesh.local/svc/orders"${extra}}}}\n` +
      'admin: {listen: "127.0.0.1:1"}\n',
  );
  return file;
}

function doctor(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', ...args], { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
}

const lineOf = (stdout: string, name: string) => stdout.split('\n').find((line) => line.includes(` ${name} `)) ?? `(no ${name} line in:\n${stdout})`;

t.test('--timeout bounds every probe, and the line that runs out names it', async (t) => {
  const hung = await listening(t, silent());
  const file = await config(t, hung, '', hung);
  const run = await doctor(['--config', file, '--timeout', '1s']);
  t.equal(run.code, 1, run.stderr);
  t.match(lineOf(run.stdout, 'upstream'), /^✗ upstream orders 127\.0\.0\.1:\d+: no answer within 1000 ms \(doctor's --timeout\) — fix: /);
  t.match(lineOf(run.stdout, 'app'), /^✗ app http:\/\/127\.0\.0\.1:\d+: reachable, but it does not speak HTTP\/1\.1: no answer within 1000 ms \(doctor's --timeout\)/);
});

t.test('without --timeout: 3 s, and the line says how to give more; an upstream whose own dial bound is shorter keeps to it', async (t) => {
  const hung = await listening(t, silent());
  const file = await config(t, hung, ', timeout: 2s, connectTimeout: 200ms', hung);
  const run = await doctor(['--config', file]);
  t.equal(run.code, 1, run.stderr);
  t.match(lineOf(run.stdout, 'upstream'), /^✗ upstream orders 127\.0\.0\.1:\d+: no answer within 200 ms \(outbound\.upstreams\.orders\.connectTimeout, the sidecar's bound for this dial\) — fix: .*raise outbound\.upstreams\.orders\.connectTimeout/);
  t.match(lineOf(run.stdout, 'app'), /no answer within 3000 ms \(doctor's probe timeout: --timeout gives more\)/);
});

t.test('a --timeout that is not a duration, or too long: one usage line naming it', async (t) => {
  const bad = await doctor(['--config', 'x.yaml', '--timeout', 'soon']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^meshcar: --timeout "soon" is not a duration of at least 1s/);
  t.equal(bad.stderr.trimEnd().split('\n').length, 1, 'one line');
  const long = await doctor(['--config', 'x.yaml', '--timeout', '10m']);
  t.equal(long.code, 2);
  t.match(long.stderr, /^meshcar: --timeout "10m" is too long: at most 1m/);
});
