// CONNECT to the CA: a JSON 405 naming the methods it takes (Allow), counted as a denied
// request, and the connection closed; Node's server drops a CONNECT it has no 'connect'
// listener for without a word, which a client reads as the CA being down. Raw TLS.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { startSigningCa } from '../helpers/ca.js';

t.test('CONNECT gets 405 method_not_allowed with Allow, then the connection closes', async (t) => {
  const { ca, bundle } = await startSigningCa();
  t.teardown(() => ca.close());
  const socket = tls.connect({ host: '127.0.0.1', port: ca.server.port, servername: 'localhost', ca: bundle });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  socket.write('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
  await once(socket, 'close');
  t.match(text, /^HTTP\/1\.1 405 /);
  t.match(text, /\r\nallow: GET, HEAD, POST\r\n/i);
  t.match(text, /"error":"method_not_allowed"/);
  const metrics = await ca.metrics.registry.metrics();
  t.match(metrics, /meshcar_ca_requests_denied_total\{reason="method_not_allowed"\} 1/);
});
