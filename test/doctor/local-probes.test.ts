// doctor's HTTP probes of this host against servers that are not what they should be: an app or
// admin port that trickles its answer a byte at a time (one deadline for the whole answer, not
// an idle timeout), one that answers too much (a capped body), and a foreign server on the
// admin port answering 200 with text (one ✗ naming what answered, never a stack trace or a ✓).

import t from 'tap';
import { listening } from '../helpers/raw-http.js';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { freePort } from '../helpers/process.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkAdmin, checkApp } from '../../src/doctor/local.js';
import { startAdminServer } from '../../src/admin/server.js';
import { pino } from 'pino';
import { formatResult } from '../../src/doctor/result.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const LIMITS = { timeoutMs: 300, maxBodyBytes: 64 * 1024 };

/** Writes one byte every 50 ms for as long as the connection lives. */
function trickle(write: (byte: string) => void, onClose: (stop: () => void) => void): void {
  const timer = setInterval(() => write('x'), 50);
  onClose(() => clearInterval(timer));
}

/** An HTTP server whose every answer is 200 with a body that never ends. */
const endlessBody = () =>
  http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    trickle((b) => res.write(b), (stop) => res.on('close', stop));
  });

/** A sidecar config (SVID files from a throwaway PKI) with this app and admin port. */
async function config(t: Tap.Test, appPort: number, adminPort: number): Promise<string> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const file = join(dir, 'orders.yaml');
  await writeFile(
    file,
    `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
      `inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:${appPort}"}\noutbound: {listen: "127.0.0.1:0", upstreams: {payments: {endpoints: ["127.0.0.1:${await freePort()}"], identity: "spiffe://mesh.local/svc/payments"}}}\n` +
      `admin: {listen: "127.0.0.1:${adminPort}"}\n`,
  );
  return file;
}

/** Resolves to what the promise gave, or rejects when it takes longer than `ms` (a hang is a failure, not a stuck test). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
    promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    }, reject);
  });
}

t.test('meshcar doctor: an app streaming forever and a foreign server on the admin port', async (t) => {
  const [appPort, adminPort] = await Promise.all([
    listening(t, endlessBody()),
    listening(t, http.createServer((_req, res) => res.end('ok\n'))),
  ]);
  const file = await config(t, appPort, adminPort);
  const started = Date.now();
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file], { timeout: 10_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
  t.ok(Date.now() - started < 10_000, `doctor ends by itself (took ${Date.now() - started} ms)`);
  t.equal(run.code, 1, `exit 1 for the failed checks, not 70:\n${run.stdout}${run.stderr}`);
  t.equal(run.stderr, '', 'no stack trace');
  t.match(run.stdout, new RegExp(`^✓ app http://127\\.0\\.0\\.1:${appPort}: reachable, speaks HTTP/1\\.1 \\(GET / → 200\\)$`, 'm'), 'the head of the answer is enough');
  t.match(run.stdout, new RegExp(`^✗ admin 127\\.0\\.0\\.1:${adminPort}: something other than a meshcar sidecar answers there: GET /ready → 200: ok, expected 200 \\{"status":"ready"\\} .* — fix: another process holds admin\\.listen`, 'm'));
  t.notMatch(run.stdout, /✓ admin/, 'never "ready"');
});

t.test('one deadline for the whole answer: a head trickled a byte at a time', async (t) => {
  const slowHead = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
    trickle((b) => socket.write(b), (stop) => socket.on('close', stop));
  });
  const port = await listening(t, slowHead);
  const loaded = await loadSidecarConfig(await config(t, port, port));
  const app = await within(3000, checkApp(loaded, LIMITS));
  t.match(formatResult(app!), new RegExp(`^✗ app http://127\\.0\\.0\\.1:${port}: reachable, but it does not speak HTTP/1\\.1: no answer within 300 ms`));
  const admin = await within(3000, checkAdmin(loaded, Date.now(), LIMITS));
  t.match(formatResult(admin), new RegExp(`^✗ admin 127\\.0\\.0\\.1:${port}: something other than a ready meshcar sidecar answers there: GET /ready: no answer within 300 ms — fix: another process holds admin\\.listen`));
});

t.test('the admin port: 200 from a foreign server, a body that never ends, one too large, and /debug/tls that is not JSON', async (t) => {
  const endless = await listening(t, endlessBody());
  const huge = await listening(t, http.createServer((_req, res) => res.end('x'.repeat(2 * 1024 * 1024))));
  const textTls = await listening(
    t,
    http.createServer((req, res) => {
      if (req.url === '/ready') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
      res.end('<html>tls</html>');
    }),
  );
  // the false ✓: 200 to /ready, and /debug/tls not found
  const foreign = await listening(t, http.createServer((req, res) => res.writeHead(req.url === '/ready' ? 200 : 404).end(req.url === '/ready' ? 'OK' : '')));
  const check = async (port: number) => formatResult(await within(3000, checkAdmin(await loadSidecarConfig(await config(t, port, port)), Date.now(), LIMITS)));
  t.match(await check(foreign), /^✗ admin .*: something other than a meshcar sidecar answers there: GET \/ready → 200: OK, expected/);
  t.match(await check(endless), /^✗ admin .*: something other than a ready meshcar sidecar answers there: GET \/ready: no answer within 300 ms — fix: /);
  t.match(await check(huge), /^✗ admin .*: something other than a ready meshcar sidecar answers there: GET \/ready: its answer to GET \/ready is over 65536 bytes — fix: /);
  t.match(await check(textTls), /^! admin .*: the running sidecar is ready, but its TLS handshake failures cannot be read: \/debug\/tls answered 200: <html>tls<\/html>, not \{"failures": \[\.\.\.\]\}/);
});

t.test("the admin port held by another service's sidecar: a failure naming it, not this sidecar ready", async (t) => {
  const view = (spiffeId: string) => ({ ready: () => true, draining: () => false, identity: () => ({ spiffeId, status: 'ready', renewalFailing: null }), config: () => ({}), metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '' }), views: { '/debug/tls': () => ({ failures: [] }) } });
  const other = await startAdminServer({ host: '127.0.0.1', port: 0 }, view('spiffe://mesh.local/svc/frontend'), pino({ level: 'silent' }));
  t.teardown(() => other.close());
  const loaded = await loadSidecarConfig(await config(t, other.port, other.port));
  t.match(formatResult(await within(3000, checkAdmin(loaded, Date.now(), LIMITS))), new RegExp(`^✗ admin .*: another sidecar answers there: it is "spiffe://mesh.local/svc/frontend", not this config's ${loaded.spiffeId} — fix: if it is this config's sidecar, started before service or trustDomain changed in the file, restart it .*; otherwise each sidecar needs an admin.listen of its own`));
  const own = await startAdminServer({ host: '127.0.0.1', port: 0 }, view(loaded.spiffeId), pino({ level: 'silent' }));
  t.teardown(() => own.close());
  t.match(formatResult(await within(3000, checkAdmin(await loadSidecarConfig(await config(t, own.port, own.port)), Date.now(), LIMITS))), /^✓ admin .*: the running sidecar is ready/, "this config's own sidecar: ready");
});

t.test('the admin port of a sidecar that drains: a warning that says so, not a foreign program', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, { ready: () => true, draining: () => true, identity: () => ({}), config: () => ({}), metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '' }), views: { '/debug/tls': () => ({ failures: [] }) } }, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  const result = formatResult(await within(3000, checkAdmin(await loadSidecarConfig(await config(t, admin.port, admin.port)), Date.now(), LIMITS)));
  t.match(result, /^! admin .*: the running sidecar is draining: it was told to stop \(SIGTERM\)/);
});
