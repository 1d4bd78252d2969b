// Text an unauthenticated caller chose does not reach an operator's terminal raw through the
// admin port: a self-signed certificate whose subject holds a C1 control (U+009B, CSI: a
// terminal's escape sequence in one character) and a bidirectional override (U+202E) is quoted
// by the failure's words, and GET /debug/tls (which `curl` prints to a terminal) writes them as
// \uXXXX escapes, as the log does; the answer is the same JSON value.

import t from 'tap';
import tls from 'node:tls';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type TestPki } from '../helpers/pki.js';
import { memoryLogger, openssl } from '../helpers/ca.js';
import { startEchoApp, type TestApp } from '../helpers/apps.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';

const TD = 'mesh.local';
const HOSTILE = 'a\u009b[2Jb\u202eevil';
const UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

let pki: TestPki;
let app: TestApp;
let sidecar: Sidecar;
let inboundPort: number;
let adminPort: number;
let dir: string;

t.before(async () => {
  pki = await makePki(TD);
  const own = await pki.issue(`spiffe://${TD}/svc/orders`);
  app = await startEchoApp();
  dir = t.testdir({ 'svid.crt': own.chainPem, 'svid.key': own.privateKeyPem, 'bundle.pem': pki.bundlePem });
  await writeFile(
    join(dir, 'orders.yaml'),
    [
      'service: orders',
      `trustDomain: ${TD}`,
      `identity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}`,
      `inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:${app.port}"}`,
      'admin: {listen: "127.0.0.1:0"}',
    ].join('\n'),
  );
  sidecar = new Sidecar(await loadSidecarConfig(join(dir, 'orders.yaml')), memoryLogger([]));
  const addresses = await sidecar.start();
  inboundPort = addresses.inbound?.port as number;
  adminPort = addresses.admin.port;
});
t.teardown(async () => {
  await sidecar?.stop();
  await app?.close();
});

/** The raw bytes of an admin answer, as curl would print them. */
function adminGet(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: adminPort, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });
}

/** One TLS attempt with a client certificate; resolves once the sidecar has closed it. */
function attempt(cert: string, key: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: inboundPort, cert, key, ca: pki.bundlePem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }, () => socket.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n'));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

t.test('a certificate subject with a C1 control and a bidi override: /debug/tls writes them escaped', async (t) => {
  const keyFile = join(dir, 'hostile.key');
  const certFile = join(dir, 'hostile.crt');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-utf8', '-subj', `/CN=${HOSTILE}`]);
  await attempt(await readFile(certFile, 'utf8'), await readFile(keyFile, 'utf8'));
  const deadline = Date.now() + 10_000;
  let body = '';
  let failures: Array<{ message: string }> = [];
  while (failures.length === 0 && Date.now() < deadline) {
    body = (await adminGet('/debug/tls')).toString('utf8');
    failures = (JSON.parse(body) as { failures: Array<{ message: string }> }).failures;
    if (failures.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(failures.length, 1, 'the failure is listed');
  t.match(failures[0]?.message ?? '', HOSTILE, 'its words quote the subject as the peer wrote it');
  t.notOk(UNSAFE.test(body), 'no C1 control or bidi override raw in the answer');
  t.match(body, '\\u009b[2Jb\\u202eevil', 'written as \\uXXXX escapes');
});
