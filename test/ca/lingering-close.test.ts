// A refusal the CA port answers while the client is still sending, on a connection that then
// closes (413 to a body declared too large, 401 before the body, 417 to an Expect it cannot meet, 400 to a broken
// head, 431 to a head still coming), reaches a client that sends its whole request before it
// reads (Python's http.client, urllib, requests): the CA half-closes and reads and drops what
// still comes for a bounded while (src/http/lingering-close.ts, as the inbound and outbound
// do), where closing at once had the kernel reset the client's next bytes and its write failed
// (EPIPE, ECONNRESET) with the JSON answer unread. Raw TLS sockets against a real CA server.

import t from 'tap';
import tls from 'node:tls';
import { startTestCa } from '../helpers/ca.js';
import { sendAllThenRead } from '../helpers/raw-http.js';
import { caToken } from '../../src/ca/commands.js';

const MB = 1024 * 1024;
const TRIES = 20;
// more than the kernel's buffers of both sockets hold, less than the linger's byte bound
const UPLOAD = 8 * MB;

async function tries(port: number, head: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < TRIES; i++) {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, allowHalfOpen: true });
    const outcome = await sendAllThenRead(socket, 'secureConnect', head, UPLOAD);
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  return counts;
}

t.test('a CA refusal that closes the connection reaches a client still sending its request', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  const sign = `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n`;
  t.same(await tries(port, `${sign}Content-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 413 Payload Too Large': TRIES }, `413 to a body over the limit: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 401 Unauthorized': TRIES }, `401 before the body, to a client with no token: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, `${sign}Expect: foo\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 417 Expectation Failed': TRIES }, `417 to an Expect it cannot meet: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nbroken header\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 400 Bad Request': TRIES }, `400 to a broken head: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, 'POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nx-big: '), { 'HTTP/1.1 431 Request Header Fields Too Large': TRIES }, `431 to a head still coming: ${TRIES} of ${TRIES} read it`);
  // still answering, and each refusal counted
  const metrics = await ca.metrics.render();
  t.match(metrics, /meshcar_ca_requests_denied_total\{reason="body_too_large"\} 20\b/);
  t.match(metrics, /meshcar_ca_requests_denied_total\{reason="expectation_failed"\} 20\b/);
});
