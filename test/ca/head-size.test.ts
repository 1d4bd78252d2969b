// A request head over 16 KiB as written gets the CA's 431 headers_too_large (JSON, counted), not
// only one whose names and values pass Node's count: 16,000 empty `X:` lines (64 KB) and a field
// with 1 MiB of whitespace before its value were served 200. Heads within the limit, a sign
// request whose 60 KB body came in the same write as its head, and a keep-alive connection's
// next request after such a body, are still served. Raw TLS sockets against a real CA server.

import t from 'tap';
import { once } from 'node:events';
import { rawTlsRequest, watchedTlsSocket } from '../helpers/raw-http.js';
import { startSigningCa } from '../helpers/ca.js';
import { metricValue, waitFor } from '../helpers/mesh.js';

const TLS = { servername: 'localhost', rejectUnauthorized: false };

t.test('heads over 16 KiB as written: 431 JSON, counted', async (t) => {
  const { ca } = await startSigningCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const heads: Array<[string, string]> = [
    ['16,000 empty field lines (64 KB)', `GET /healthz HTTP/1.1\r\nHost: localhost\r\n${'X:\r\n'.repeat(16_000)}\r\n`],
    ['5,000 empty field lines (20 KB)', `GET /healthz HTTP/1.1\r\nHost: localhost\r\n${'X:\r\n'.repeat(5_000)}\r\n`],
    ['1 MiB of whitespace before a value', `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A:${' '.repeat(1 << 20)}y\r\n\r\n`],
  ];
  for (const [what, head] of heads) {
    const answer = await rawTlsRequest(port, TLS, head);
    t.equal(answer.status, 431, `${what}: 431`);
    t.equal(answer.headers.connection, 'close', `${what}: the connection closes`);
    t.match(JSON.parse(answer.body || '{}'), { error: 'headers_too_large', message: /over the limit of 16384 bytes/ }, `${what}: ${answer.body.slice(0, 160)}`);
  }
  t.equal(metricValue(await ca.metrics.render(), 'meshcar_ca_requests_denied_total{reason="headers_too_large"}'), heads.length, 'each counted as headers_too_large');
});

t.test('heads within the limit, and bodies that come with them, are served', async (t) => {
  const { ca, token } = await startSigningCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const near = await rawTlsRequest(port, TLS, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: ${'a'.repeat(15_000)}\r\n${'X:\r\n'.repeat(200)}\r\n`);
  t.equal(near.status, 200, `a 15.8 KB head: ${near.status}`);

  // one write: the head, a 60 KB body, then a second request on the same connection
  const body = JSON.stringify({ csr: 'x'.repeat(60_000) });
  const { socket, text } = watchedTlsSocket(port, TLS);
  await once(socket, 'secureConnect');
  socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await waitFor(async () => text().includes('"error"'), 5_000, 'the sign answer');
  t.match(text(), /^HTTP\/1\.1 400 [\s\S]*"error":"bad_csr"/, 'the sign request is judged by its CSR (bad_csr), not 431');
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(async () => text().includes('{"status":"ok"}'), 5_000, 'the next answer');
  t.pass('the next request on the connection is served');
  socket.destroy();
  t.equal(metricValue(await ca.metrics.render(), 'meshcar_ca_requests_denied_total{reason="headers_too_large"}'), 0, 'none counted as headers_too_large');
});
