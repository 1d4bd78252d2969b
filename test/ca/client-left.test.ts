// A sign request whose connection ends before its body is whole is no CA fault: a client that
// goes away mid-body is counted and audited as client_closed, one cut by the CA's own 408 (a
// body too slow) as request_timeout, once. Both were `internal`: an error line "signing failed"
// with a stack, an audit line with reason internal, and denied_total{reason="internal"} +1 (the
// 408 counted twice, as request_timeout and internal). Raw TLS sockets, a real join token,
// against a real CA server.

import t from 'tap';
import { once } from 'node:events';
import { rawTlsUntilClosed, watchedTlsSocket } from '../helpers/raw-http.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { metricValue, waitFor } from '../helpers/mesh.js';
import { caToken } from '../../src/ca/commands.js';

const TLS = { servername: 'localhost', rejectUnauthorized: false };

const denied = async (ca: TestCa, reason: string) => metricValue(await ca.metrics.render(), `meshcar_ca_requests_denied_total{reason="${reason}"}`);
const audits = (ca: TestCa) => ca.logLines.filter((line) => line.event === 'ca.deny');
const errorLines = (ca: TestCa) => ca.logLines.filter((line) => Number(line.level) >= 50);

async function signHead(ca: TestCa, extra = ''): Promise<string> {
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  return `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n${extra}\r\n`;
}

t.test('a client that leaves mid-body: client_closed, not internal', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const { socket, text } = watchedTlsSocket(ca.server.port, TLS);
  await once(socket, 'secureConnect');
  // the CA says "go on" once the caller is authenticated, just before it reads the body
  socket.write(await signHead(ca, 'Expect: 100-continue\r\n'));
  await waitFor(async () => text().startsWith('HTTP/1.1 100 '), 5_000, '100 Continue');
  socket.write('{"csr":"-----BEGIN CERT');
  socket.destroy();
  await waitFor(async () => audits(ca).length > 0, 5_000, 'the audit line');
  t.match(audits(ca), [{ event: 'ca.deny', reason: 'client_closed', tokenId: String, spiffeId: 'spiffe://mesh.local/svc/orders' }], 'audited as client_closed, with who asked');
  t.equal(await denied(ca, 'client_closed'), 1, 'counted as client_closed');
  t.equal(await denied(ca, 'internal'), 0, 'not as internal');
  t.same(errorLines(ca), [], 'no error line');
});

t.test('a body cut by the CA\'s 408: request_timeout, once', async (t) => {
  const ca = await startTestCa({}, undefined, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
  t.teardown(() => ca.close());
  const answer = await rawTlsUntilClosed(ca.server.port, TLS, `${await signHead(ca)}{"csr":"`, 10_000);
  t.match(answer, /^HTTP\/1\.1 408 /, `408: ${answer.split('\r\n')[0]}`);
  await waitFor(async () => audits(ca).length > 0, 5_000, 'the audit line');
  t.match(audits(ca), [{ event: 'ca.deny', reason: 'request_timeout', tokenId: String }], 'audited once, as request_timeout');
  t.equal(await denied(ca, 'request_timeout'), 1, 'counted once as request_timeout');
  t.equal(await denied(ca, 'internal'), 0, 'not as internal');
  t.equal(await denied(ca, 'client_closed'), 0, 'nor as client_closed');
  t.same(errorLines(ca), [], 'no error line');
});
