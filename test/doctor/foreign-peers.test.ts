// meshcar doctor against the wrong program on a port it checks, each a real server on loopback:
// a plain HTTP server where the CA or an upstream sidecar should speak TLS, an upstream with a
// self-signed certificate, an admin port that answers no HTTP, cuts its answer short, or sends
// terminal escape sequences, an OpenAPI spec file that is missing, and a CA that accepts and
// never answers (one probe deadline, not two). Each is one ✗ line (one
// line of output, no OpenSSL source paths, no escape codes) that names what answered and the fix.

import t from 'tap';
import { listening } from '../helpers/raw-http.js';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type TestPki } from '../helpers/pki.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkAdmin } from '../../src/doctor/local.js';
import { checkCa } from '../../src/doctor/ca.js';
import { checkSpecs } from '../../src/doctor/openapi.js';
import { runDoctor } from '../../src/doctor/index.js';
import { PROBE_TIMEOUT_MS } from '../../src/doctor/probe.js';
import { formatResult } from '../../src/doctor/result.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const LIMITS = { timeoutMs: 2000, maxBodyBytes: 64 * 1024 };

/** A raw TCP server that answers the first bytes it reads with `answer`, then closes. */
const answering = (answer: string) => net.createServer((socket) => socket.once('data', () => socket.end(answer)));
const plainHttp = () => http.createServer((_req, res) => res.end('hello\n'));

/** A sidecar config with SVID files from a throwaway PKI, an upstream, an admin port and more YAML. */
async function config(t: Tap.Test, opts: { upstreamPort: number; adminPort: number; extra?: string; pki?: TestPki }): Promise<string> {
  const pki = opts.pki ?? (await makePki('mesh.local'));
  const leaf = await pki.issue('spiffe://mesh.local/svc/frontend');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const file = join(dir, 'frontend.yaml');
  await chmod(join(dir, 'svid.key'), 0o600);
  await writeFile(
    file,
    `service: frontend\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
      `outbound: {listen: "127.0.0.1:0", upstreams: {orders: {endpoints: ["127.0.0.1:${opts.upstreamPort}"], identity: "spiffe://mesh.local/svc/orders"${opts.extra ?? ''}}}}\n` +
      `admin: {listen: "127.0.0.1:${opts.adminPort}"}\n`,
  );
  return file;
}

function doctor(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file], { timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
}

t.test('a plain HTTP server where an upstream sidecar should speak TLS: one line, "does not speak TLS", and a fix', async (t) => {
  const upstreamPort = await listening(t, plainHttp());
  const adminPort = await listening(t, answering('HELLO\r\n\r\n'));
  const run = await doctor(await config(t, { upstreamPort, adminPort }));
  t.equal(run.code, 1, `exit 1, not 70:\n${run.stdout}${run.stderr}`);
  t.equal(run.stderr, '', 'no stack trace');
  const lines = run.stdout.trimEnd().split('\n');
  t.same(lines.filter((l) => !/^[✓✗!-] |^(all checks passed|\d+ checks? failed)$/.test(l)), [], `every line is a check or the summary:\n${run.stdout}`);
  t.notMatch(run.stdout, /ssl3_get_record|deps\/openssl/, 'no OpenSSL source paths');
  t.match(run.stdout, new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${upstreamPort}: it does not speak TLS: what answered is not a TLS server .*\\(ERR_SSL_WRONG_VERSION_NUMBER\\) — fix: the endpoint is not a meshcar inbound listener`, 'm'));
  t.match(run.stdout, new RegExp(`^✗ admin 127\\.0\\.0\\.1:${adminPort}: something other than a ready meshcar sidecar answers there: GET /ready: its answer is not HTTP/1\\.1: .*\\(HPE_INVALID_CONSTANT\\) — fix: another process holds admin\\.listen`, 'm'));
});

t.test('an upstream presenting a self-signed certificate: the ✗ says what to do', async (t) => {
  const other = await makePki('mesh.local');
  const leaf = await other.issue('spiffe://mesh.local/svc/orders');
  const upstreamPort = await listening(t, tls.createServer({ cert: leaf.chainPem, key: leaf.privateKeyPem, ALPNProtocols: ['h2'] }));
  const run = await doctor(await config(t, { upstreamPort, adminPort: 0 }));
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.match(run.stdout, new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${upstreamPort}: its certificate is not from a CA in our bundle \\(\\w+\\) — fix: the endpoint is not a sidecar of this mesh`, 'm'));
});

t.test('an upstream presenting a CA certificate with the right SPIFFE ID: ✗ as the sidecar refuses it', async (t) => {
  const pki = await makePki('mesh.local');
  // chains to our bundle and names orders, but signs SVIDs: the outbound refuses it (bad_identity)
  const signer = await pki.issueWithUris(['spiffe://mesh.local/svc/orders'], { ca: true, keyUsage: { digitalSignature: true, keyCertSign: true, cRLSign: true } });
  const upstreamPort = await listening(t, tls.createServer({ cert: signer.chainPem, key: signer.privateKeyPem, ALPNProtocols: ['h2'] }));
  const run = await doctor(await config(t, { upstreamPort, adminPort: 0, pki }));
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.match(run.stdout, new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${upstreamPort}: not a meshcar sidecar: the certificate is a CA certificate`, 'm'));
});

// an RSA-1024 key under our own root: the sidecar's TLS (security level 2) refuses it, so
// doctor, dialling with the same policy, says ✗ (it said ✓ at OpenSSL's default level)
t.test('an upstream with an RSA-1024 key under our root: ✗ as the sidecar refuses it', async (t) => {
  const pki = await makePki('mesh.local');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const weak = await pki.issue('spiffe://mesh.local/svc/orders', { key: { privateKeyPem: privateKey, publicKeyPem: publicKey } });
  const upstreamPort = await listening(t, tls.createServer({ cert: weak.chainPem, key: weak.privateKeyPem, ALPNProtocols: ['h2'], ciphers: 'DEFAULT:@SECLEVEL=0' }).on('tlsClientError', () => undefined));
  const run = await doctor(await config(t, { upstreamPort, adminPort: 0, pki }));
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.match(run.stdout, new RegExp(`^✗ upstream orders 127\\.0\\.0\\.1:${upstreamPort}: .*key too weak`, 'm'));
});

t.test('a plain HTTP server at identity.ca.url: reachable but not the CA, not "start the CA"', async (t) => {
  const caPort = await listening(t, plainHttp());
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'frontend.token': 'x', svid: {} });
  const file = join(dir, 'frontend.yaml');
  await writeFile(file, `service: frontend\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:${caPort}", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'frontend.token')}}\n  dir: ${join(dir, 'svid')}\noutbound: {listen: "127.0.0.1:0", upstreams: {orders: {endpoints: [\"127.0.0.1:1\"], identity: \"spiffe://mesh.local/svc/orders\"}}}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const line = formatResult((await checkCa(await loadSidecarConfig(file)))!);
  t.match(line, new RegExp(`^✗ ca https://127\\.0\\.0\\.1:${caPort}: reachable, but not the meshcar CA: it does not speak TLS: .* — fix: identity\\.ca\\.url must name the CA's listen address`));
  t.notMatch(line, /unreachable|start the CA|\n/);
});

t.test('the admin port: an answer cut short is not a TLS handshake; escape sequences are not passed to the terminal', async (t) => {
  const cut = await listening(t, answering('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"sta'));
  const escapes = await listening(t, http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('\u001b[2J\u001b[31mok\u001b[0m\r\nsecond line \u202eevil\u2028x')));
  const check = async (port: number) => formatResult(await checkAdmin(await loadSidecarConfig(await config(t, { upstreamPort: 1, adminPort: port })), Date.now(), LIMITS));
  const cutLine = await check(cut);
  t.match(cutLine, /^✗ admin .*: something other than a ready meshcar sidecar answers there: GET \/ready: the connection was closed before a whole HTTP answer \(ECONNRESET\) — fix: another process holds admin\.listen/);
  t.notMatch(cutLine, /handshake|certificate/, 'no TLS on an admin port');
  const escapeLine = await check(escapes);
  t.match(escapeLine, /GET \/ready → 200 text\/plain: \\x1b\[2J\\x1b\[31mok\\x1b\[0m second line/, 'shown as \\x1b');
  t.notMatch(escapeLine, /[\u0000-\u001f]/, 'no control character reaches the terminal');
  t.match(escapeLine, 'second line \\u202eevil x', 'a bidi override shown as \\uXXXX (the line separator folded to a space, as a line break)');
  t.notMatch(escapeLine, /[\u202e\u2028]/, 'neither reaches the terminal raw');
});

t.test('a missing spec file: the fix names the file, not a JSON pointer it has none of', async (t) => {
  const file = await config(t, { upstreamPort: 1, adminPort: 0, extra: ', openapi: {spec: /nonexistent/orders.openapi.yaml}' });
  const [result] = await checkSpecs(await loadSidecarConfig(file));
  const line = formatResult(result!);
  t.match(line, /^✗ openapi outbound\.upstreams\.orders\.openapi: \/nonexistent\/orders\.openapi\.yaml: the spec file does not exist .* — fix: point outbound\.upstreams\.orders\.openapi\.spec at a readable OpenAPI/);
  t.notMatch(line, /JSON pointer/);
});

t.test('a CA that accepts and never answers costs one probe deadline, not two (identity and ca probe it side by side)', async (t) => {
  const caPort = await listening(t, net.createServer(() => undefined));
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/frontend');
  const dir = t.testdir({ svid: { 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem }, 'frontend.token': 'x' });
  await chmod(join(dir, 'svid', 'svid.key'), 0o600);
  const file = join(dir, 'frontend.yaml');
  await writeFile(file, `service: frontend\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:${caPort}", bundle: ${join(dir, 'svid', 'bundle.pem')}, token: ${join(dir, 'frontend.token')}}\n  dir: ${join(dir, 'svid')}\noutbound: {listen: "127.0.0.1:0", upstreams: {orders: {endpoints: ["127.0.0.1:1"], identity: "spiffe://mesh.local/svc/orders"}}}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const started = Date.now();
  const results = await runDoctor(file);
  const took = Date.now() - started;
  t.match(formatResult(results.find((r) => r.name.startsWith('ca '))!), /^✗ ca .*: unreachable: no answer within 3000 ms/);
  t.ok(took < 2 * PROBE_TIMEOUT_MS - 300, `one deadline: ${took} ms (two in a row would be over ${2 * PROBE_TIMEOUT_MS})`);
});
