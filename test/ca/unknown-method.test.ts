// A method Node's HTTP/1.1 parser does not know (BAN), sent to the CA: 501 unsupported_method
// saying this port does not serve it (not the sidecar's list of the parser's methods, nor a word
// of Node), counted as `unsupported_method`, exported at 0 before: a review found it counted as
// `internal`, which the README has as a fault of the CA's own (an alert one request could trip).
// Raw TLS.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { startSigningCa } from '../helpers/ca.js';

t.test('BAN gets 501 unsupported_method, counted as such, then the connection closes', async (t) => {
  const { ca, bundle } = await startSigningCa();
  t.teardown(() => ca.close());
  t.match(await ca.metrics.registry.metrics(), /meshcar_ca_requests_denied_total\{reason="unsupported_method"\} 0/, 'exported at 0 from the start');
  const socket = tls.connect({ host: '127.0.0.1', port: ca.server.port, servername: 'localhost', ca: bundle });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  socket.write('BAN /v1/bundle HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await once(socket, 'close');
  t.match(text, /^HTTP\/1\.1 501 /);
  t.match(text, /"error":"unsupported_method","message":"the method BAN is not one this port serves"/);
  t.notMatch(text, /Node|PROPFIND/, 'no list of the parser, no word of Node');
  const metrics = await ca.metrics.registry.metrics();
  t.match(metrics, /meshcar_ca_requests_denied_total\{reason="unsupported_method"\} 1/, 'counted as what it is');
  t.match(metrics, /meshcar_ca_requests_denied_total\{reason="internal"\} 0/, 'not as a fault of the CA');
});
