// Plain HTTP sent to the CA's HTTPS port (`curl http://`, the scheme mistyped) gets a 400 with
// the CA's JSON error body saying to use https:// with the CA's bundle, where it got "Empty
// reply from server". The answer reaches a client still sending its body, and the CA holds no
// such socket beyond the linger's bound, however the client behaves: it never reads nor
// closes, keeps sending, or resets at once. Afterwards the same port still signs, by join token
// and by client certificate. Real curl, raw sockets and HTTPS against a real CA server.

import t from 'tap';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { LINGER_MS, LINGER_IDLE_MS } from '../../src/http/lingering-close.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { callCa, startSigningCa, type TestCa } from '../helpers/ca.js';
import { rawTcpRequest } from '../helpers/raw-http.js';
import { checkPlainHttpAnswer, curlPlain, heldAfter, resetAtOnce, silentAfterRequest, uploadsThenRead } from '../helpers/plain-http.js';
import { serverLetGoWithin } from '../helpers/connections.js';

const MB = 1024 * 1024;
const SAID = /^plain HTTP sent to the meshcar CA, which speaks HTTPS only: use https:\/\/ on the same address, trusting the CA's bundle\.pem/;
const GET = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';

let ca: TestCa;
let bundle: string;
let token: string;
t.before(async () => {
  ({ ca, bundle, token } = await startSigningCa());
});
t.teardown(() => ca.close());
const port = () => ca.server.port;

t.test('curl http:// gets a 400 with the CA’s JSON error body', async (t) => {
  checkPlainHttpAnswer(t, await curlPlain([`http://127.0.0.1:${port()}/healthz`]), SAID);
  const posted = await curlPlain(['-H', `Authorization: Bearer ${token}`, '-d', '{"csr":"x"}', `http://127.0.0.1:${port()}/v1/sign`]);
  t.equal(posted.statusLine, 'HTTP/1.1 400 Bad Request', 'a POST with a body gets it too');
  const connect = await rawTcpRequest(port(), 'CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n');
  t.equal(connect.status, 400);
  t.match((JSON.parse(connect.body) as { message: string }).message, /^an HTTP proxy request \(CONNECT\) sent as plain HTTP to the meshcar CA/, 'CONNECT gets it, saying what it was');
});

t.test('a raw POST gets the 400, also while it is still sending a body larger than the kernel buffers', async (t) => {
  const small = await rawTcpRequest(port(), 'POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"csr":"x"}');
  t.equal(small.status, 400);
  t.match((JSON.parse(small.body) as { message: string }).message, SAID);
  const upload = 8 * MB;
  const outcomes = await uploadsThenRead(port(), `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${upload}\r\n\r\n`, upload, 5);
  t.same(outcomes, Array(5).fill('HTTP/1.1 400 Bad Request'), 'each read the 400 after sending 8 MiB');
});

t.test('a client that never reads nor closes is let go within the linger bound, also one that keeps sending', async (t) => {
  const since = Date.now();
  const silent = await silentAfterRequest(port(), GET, false);
  const sending = await silentAfterRequest(port(), GET, true);
  t.teardown(() => {
    silent.stop();
    sending.stop();
  });
  const [silentAfter, sendingAfter] = await Promise.all([serverLetGoWithin(port(), silent.localPort, since, LINGER_MS + 3000), serverLetGoWithin(port(), sending.localPort, since, LINGER_MS + 3000)]);
  t.type(silentAfter, 'number', `one that sends nothing more is let go (${String(silentAfter)})`);
  t.ok((silentAfter as number) < LINGER_IDLE_MS + 1500, 'after about the linger’s idle bound');
  t.type(sendingAfter, 'number', `one that keeps sending is let go (${String(sendingAfter)})`);
  t.ok((sendingAfter as number) < LINGER_MS + 1500, 'within the linger’s whole bound');
});

t.test('clients that reset at once leave no socket behind, and the CA still signs by token and by certificate', async (t) => {
  await resetAtOnce(port(), GET, 40);
  t.same(await heldAfter(port(), LINGER_MS + 3000), [], 'no connection left on the CA port');
  const pair = await generateWorkloadKey();
  const csr = await buildCsr(createPrivateKey(pair.privateKeyPem), createPublicKey(pair.publicKeyPem), 'spiffe://mesh.local/svc/orders');
  const first = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ csr }) });
  t.equal(first.status, 200, 'signed by join token over HTTPS');
  const chain = first.json().chain as string;
  const renewed = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, cert: chain, key: pair.privateKeyPem, body: JSON.stringify({ csr }) });
  t.equal(renewed.status, 200, 'renewed over HTTPS with a client certificate');
});
