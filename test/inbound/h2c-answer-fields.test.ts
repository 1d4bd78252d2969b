// An h2c app's answer with many fields: it reaches the caller as an http:// app's would. Node's
// http2 client takes 128 fields in a head by default (maxHeaderListPairs) and resets the stream
// ENHANCE_YOUR_CALM beyond, so an answer of 200 fields, which an http:// app gets through the
// same inbound, was 502 upstream_reset 'the app closed the connection' (it had not). The app is
// raw frames over TCP (SETTINGS, then one HEADERS and one DATA for each request).

import t from 'tap';
import http2 from 'node:http2';
import { h1Request, h2Connect, startInbound } from '../helpers/inbound-fixture.js';
import { FLAG, FRAME, frame, headerBlock, startRawH2cApp } from '../helpers/raw-h2.js';

/** A raw h2c app answering every request 200 with `fields` extra fields x-f0: v ... and the body `hello`. */
function startManyFieldsApp(fields: number) {
  const head = headerBlock([[':status', '200'], ...Array.from({ length: fields }, (_, i) => [`x-f${i}`, 'v'] as const)]);
  return startRawH2cApp((id) => [frame(FRAME.HEADERS, FLAG.END_HEADERS, id, head), frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('hello'))]);
}

t.test('an h2c app answering with 200 fields: the answer reaches HTTP/1.1 and HTTP/2 callers whole', async (t) => {
  const app = await startManyFieldsApp(200);
  const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();
  const h1 = await h1Request(fx.port, tlsOptions, { path: '/many' });
  t.equal(h1.status, 200, `HTTP/1.1 caller: ${h1.status} ${h1.body.slice(0, 200)}`);
  t.equal(h1.body, 'hello');
  t.equal(h1.headers['x-f199'], 'v', 'the last field too');
  // an HTTP/2 caller that takes as many fields (Node's client, too, takes 128 by default)
  const session = await h2Connect(fx.port, { ...tlsOptions, maxHeaderListPairs: 2000 } as http2.SecureClientSessionOptions);
  t.teardown(() => session.close());
  const h2 = await new Promise<{ status: number; last: unknown }>((resolve, reject) => {
    const stream = session.request({ ':path': '/many' });
    stream.on('response', (headers) => resolve({ status: Number(headers[':status']), last: headers['x-f199'] }));
    stream.on('close', () => reject(new Error(`stream closed without a response (rstCode ${stream.rstCode})`)));
    stream.resume();
  });
  t.same(h2, { status: 200, last: 'v' }, 'HTTP/2 caller: 200 with every field');
});
