// An unauthenticated caller's certificate does not size the sidecar's warn log or /debug/tls:
// a 30 KB URI SAN (a real self-signed certificate made with openssl, and one from our own CA
// naming another trust domain) is described in its first 256 characters and its length.

import t from 'tap';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type TestPki } from '../helpers/pki.js';
import { openssl } from '../helpers/ca.js';
import { startFilesSidecar, type FilesSidecar } from '../helpers/files-sidecar.js';

const TD = 'mesh.local';
const LONG = 30_000;

let pki: TestPki;
let fx: FilesSidecar;
let inboundPort: number;
let dir: string;
let lines: Array<Record<string, unknown>>;

t.before(async () => {
  pki = await makePki(TD);
  dir = t.testdir();
  // on every address: the callers come from their own loopback addresses
  fx = await startFilesSidecar(pki, dir, '0.0.0.0');
  inboundPort = fx.inboundPort;
  lines = fx.lines;
});
t.teardown(() => fx?.close());

const adminGet = async (path: string): Promise<string> => (await fx.adminGet(path)).toString('utf8');

/** One TLS attempt from `localAddress` with a client certificate; resolves once the sidecar has closed it. */
function attempt(localAddress: string, cert: string, key: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: inboundPort, localAddress, cert, key, ca: pki.bundlePem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }, () => socket.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n'));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

/** The log line and the /debug/tls entry for a failure from `address`, once both are there. */
async function described(address: string): Promise<{ logged: string; entry: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const logged = lines.find((l) => l.component === 'tls' && String(l.peer).startsWith(`${address}:`));
    const { failures } = JSON.parse(await adminGet('/debug/tls')) as { failures: Array<{ peer: string; message: string }> };
    const entry = failures.find((f) => f.peer.startsWith(`${address}:`));
    if (logged && entry) return { logged: JSON.stringify(logged), entry: entry.message };
    if (Date.now() > deadline) throw new Error(`no failure from ${address} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('a self-signed certificate with a 30 KB URI SAN: clipped to 256 characters and its length', async (t) => {
  const uri = `spiffe://${TD}/svc/${'a'.repeat(LONG - `spiffe://${TD}/svc/`.length)}`;
  const keyFile = join(dir, 'long.key');
  const certFile = join(dir, 'long.crt');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=long', '-addext', `subjectAltName=URI:${uri}`]);
  t.match(await openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', certFile]), uri, 'the certificate carries the whole URI');
  await attempt('127.0.0.31', await readFile(certFile, 'utf8'), await readFile(keyFile, 'utf8'));
  const { logged, entry } = await described('127.0.0.31');
  t.match(entry, `(${uri.slice(0, 256)}… (${LONG} characters))`, 'the first 256 characters, then the length');
  t.match(entry, /certificate from an unknown CA/);
  t.ok(entry.length < 1000, `the /debug/tls message is ${entry.length} characters`);
  t.ok(logged.length < 1500, `the warn line is ${logged.length} characters`);
});

t.test('a certificate from our CA naming another trust domain in a 30 KB URI: the error text is clipped too', async (t) => {
  const uri = `spiffe://acme.internal/svc/${'b'.repeat(LONG - 'spiffe://acme.internal/svc/'.length)}`;
  const other = await pki.issueWithUris([uri]);
  await attempt('127.0.0.32', other.chainPem, other.privateKeyPem);
  const { logged, entry } = await described('127.0.0.32');
  t.match(entry, /^no usable SPIFFE ID: .*spiffe:\/\/acme\.internal\/svc\/b+… \(\d+ characters\)$/);
  t.ok(entry.length < 1000, `the /debug/tls message is ${entry.length} characters`);
  t.ok(logged.length < 1500, `the warn line is ${logged.length} characters`);
});
