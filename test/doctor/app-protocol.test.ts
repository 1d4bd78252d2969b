// `meshcar doctor`'s app check, through the real CLI, when the app does not speak what
// inbound.app says: the line names what it speaks instead, so the fix is one that works. An
// h2c app behind http:// and an HTTP/1.1 app behind h2c:// are told to switch scheme; an https
// app (it does its own TLS) was told to switch to h2c:// too, which fails the same way, and a
// meshcar TLS port, which answers plain HTTP with a 400, is TLS too, not an app; a server
// speaking none of them (an SSH banner) gets "check what listens there".

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { execFileAsync, startTestCa } from '../helpers/ca.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const dir = t.testdir();
let files: { cert: string; key: string; bundle: string };
const servers: net.Server[] = [];

t.before(async () => {
  const caDir = join(dir, 'ca');
  await execFileAsync(process.execPath, [CLI, 'ca', 'init', '--dir', caDir, '--trust-domain', 'mesh.local']);
  const out = join(dir, 'svid');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', caDir, '--service', 'orders', '--out', out]);
  files = { cert: join(out, 'svid.crt'), key: join(out, 'svid.key'), bundle: join(out, 'bundle.pem') };
});
t.teardown(() => {
  for (const server of servers) server.close();
});

/** Listening on a loopback port 0; its port, read back. */
async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** doctor on an orders config with identity.files, inbound.app `app`, admin on port 0; exit code and the app's line. */
async function doctorApp(app: string): Promise<{ code: number; line: string | undefined; ok: boolean }> {
  const file = join(dir, `app-${servers.length}-${app.split(':')[0]}.yaml`);
  await writeFile(file, ['service: orders', 'trustDomain: mesh.local', 'identity:', `  files: {cert: ${files.cert}, key: ${files.key}, bundle: ${files.bundle}}`, 'inbound:', '  listen: 127.0.0.1:0', `  app: ${app}`, 'admin:', '  listen: 127.0.0.1:0', ''].join('\n'));
  const run = (json: boolean) =>
    new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'doctor', '--config', file, ...(json ? ['--json'] : [])], { timeout: 20_000 }, (err, stdout) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout })),
    );
  const [text, json] = await Promise.all([run(false), run(true)]);
  const ok = (JSON.parse(json.stdout) as { ok: boolean }).ok;
  t.equal(json.code, text.code, '--json exits as the text does');
  return { code: text.code, line: text.stdout.split('\n').find((l) => l.includes(' app ')), ok };
}

t.test('an h2c app behind http://: it speaks HTTP/2 (h2c), use h2c://', async (t) => {
  const port = await listen(http2.createServer((_req, res) => res.end('ok')));
  const found = await doctorApp(`http://127.0.0.1:${port}`);
  t.match(found, { code: 1, ok: false });
  t.match(found.line, /^✗ app http:\/\/127\.0\.0\.1:\d+: reachable, but it does not speak HTTP\/1\.1, it speaks HTTP\/2 \(h2c\): .* — fix: use h2c:\/\/ in inbound\.app/);
});

t.test('an HTTP/1.1 app behind h2c://: it speaks HTTP/1.1, use http://', async (t) => {
  const port = await listen(http.createServer((_req, res) => res.end('ok')));
  const found = await doctorApp(`h2c://127.0.0.1:${port}`);
  t.match(found, { code: 1, ok: false });
  t.match(found.line, /^✗ app h2c:\/\/127\.0\.0\.1:\d+: reachable, but it does not speak HTTP\/2 with prior knowledge \(h2c\), it speaks HTTP\/1\.1 \(GET \/ → 200\): .* — fix: use http:\/\/ in inbound\.app/);
});

t.test('an https app: it speaks TLS, the sidecar does the TLS; not "use h2c://"', async (t) => {
  const [cert, key] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8')]);
  const port = await listen(https.createServer({ cert, key }, (_req, res) => res.end('ok')));
  for (const scheme of ['http', 'h2c']) {
    const found = await doctorApp(`${scheme}://127.0.0.1:${port}`);
    t.match(found, { code: 1, ok: false });
    t.match(found.line, new RegExp(`^✗ app ${scheme}://127\\.0\\.0\\.1:\\d+: reachable, but it speaks TLS, not .* — fix: the sidecar does the TLS: have the app serve plain .* on 127\\.0\\.0\\.1:${port}`), scheme);
    t.notMatch(found.line, /use (h2c|http):\/\//);
  }
});

t.test('a meshcar TLS port (the CA, a sidecar inbound), which answers plain HTTP with 400: it speaks TLS, not "HTTP/1.1 (GET / → 400)"', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const found = await doctorApp(`http://127.0.0.1:${ca.server.port}`);
  t.match(found, { code: 1, ok: false });
  t.match(found.line, new RegExp(`^✗ app http://127\\.0\\.0\\.1:\\d+: reachable, but it speaks TLS, not HTTP/1\\.1: it answers plain HTTP only with 400, as a TLS port does — fix: the sidecar does the TLS`));
});

t.test('a server speaking none of them: what listens there is the question', async (t) => {
  // the probes reset the connection when they give up: not an error of this test
  const port = await listen(net.createServer((socket) => socket.on('error', () => undefined).end('SSH-2.0-OpenSSH_9.6\r\n')));
  const found = await doctorApp(`http://127.0.0.1:${port}`);
  t.match(found, { code: 1, ok: false });
  t.match(found.line, /^✗ app http:\/\/127\.0\.0\.1:\d+: reachable, but it speaks neither HTTP\/1\.1 nor h2c nor TLS: its answer is not HTTP\/1\.1: .* — fix: check what listens on 127\.0\.0\.1:\d+ \(ss -ltnp names it\)/);
});
