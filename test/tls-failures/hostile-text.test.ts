// Text an unauthenticated caller chose does not reach an operator's terminal raw through the
// admin port: a self-signed certificate whose subject holds a C1 control (U+009B, CSI: a
// terminal's escape sequence in one character) and a bidirectional override (U+202E) is quoted
// by the failure's words, and GET /debug/tls (which `curl` prints to a terminal) writes them as
// \uXXXX escapes, as the log does; the answer is the same JSON value.

import t from 'tap';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type TestPki } from '../helpers/pki.js';
import { openssl } from '../helpers/ca.js';
import { startFilesSidecar, type FilesSidecar } from '../helpers/files-sidecar.js';

const TD = 'mesh.local';
const HOSTILE = 'a\u009b[2Jb\u202eevil';
const UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

let pki: TestPki;
let fx: FilesSidecar;
let inboundPort: number;
let dir: string;

t.before(async () => {
  pki = await makePki(TD);
  dir = t.testdir();
  fx = await startFilesSidecar(pki, dir);
  inboundPort = fx.inboundPort;
});
t.teardown(() => fx?.close());

/** The raw bytes of an admin answer, as curl would print them. */
const adminGet = (path: string): Promise<Buffer> => fx.adminGet(path);

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
