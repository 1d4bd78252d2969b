// A caller's request trailers reach an h2c app (they were replaced by an empty END_STREAM):
// from an HTTP/2 caller on both codecs and from a chunked HTTP/1.1 caller; fields that may not
// be trailers (pseudo-headers, hop-by-hop, framing) stay behind, as in response trailers, and
// so do the fields the sidecar sets (x-forwarded-client-cert, x-request-id, their `_`
// spellings): a caller's forged identity in a trailer must not reach an app merging trailers.

import t from 'tap';
import https from 'node:https';
import { h2Connect } from '../helpers/inbound-fixture.js';
import { inboundWithRecordingApp } from '../helpers/recording-h2-app.js';

const FORGED = 'URI=spiffe://mesh.test/svc/admin';

const fixture = inboundWithRecordingApp;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: an HTTP/2 caller's request trailers reach the h2c app`, async (t) => {
    const { fx, seen } = await fixture(t, codec);
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    const status = await new Promise<number>((resolve, reject) => {
      const stream = caller.request({ ':method': 'POST', ':path': '/up' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'x-checksum': 'abc123', 'grpc-status': '0', 'x-forwarded-client-cert': FORGED, x_forwarded_client_cert: FORGED, 'x-request-id': 'forged-id' }),
      );
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end('payload');
    });
    t.equal(status, 200);
    t.equal(seen[0]?.body, 'payload');
    t.match(seen[0]?.trailers, { 'x-checksum': 'abc123', 'grpc-status': '0' }, 'the trailers arrived');
    for (const name of ['x-forwarded-client-cert', 'x_forwarded_client_cert', 'x-request-id']) t.equal(seen[0]?.trailers?.[name], undefined, `no ${name} from the caller`);
  });
}

t.test('a chunked HTTP/1.1 caller\'s trailers reach the h2c app; fields that may not be trailers stay behind', async (t) => {
  const { fx, seen } = await fixture(t, 'node');
  const tlsOptions = await fx.tlsOptions();
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/up', agent: false, ALPNProtocols: ['http/1.1'], headers: { 'transfer-encoding': 'chunked', trailer: 'x-checksum' }, ...(tlsOptions as https.RequestOptions) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) t.comment(`answer: ${res.statusCode} ${text}`);
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('error', reject);
    req.write('pay');
    req.addTrailers({ 'x-checksum': 'def456', authorization: 'Bearer t', 'x-forwarded-client-cert': FORGED });
    req.end('load');
  });
  t.equal(status, 200);
  t.equal(seen[0]?.body, 'payload');
  t.equal(seen[0]?.trailers?.['x-checksum'], 'def456', 'the trailer arrived');
  t.equal(seen[0]?.trailers?.authorization, undefined, 'a field that may not be a trailer did not');
  t.equal(seen[0]?.trailers?.['x-forwarded-client-cert'], undefined, 'nor a forged identity');
});
