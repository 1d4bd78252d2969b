// A request its upstream refused unprocessed (RST_STREAM REFUSED_STREAM, or a stream above a
// GOAWAY's last id: RFC 9113 §8.7) that cannot be sent again (its upload still coming or over
// bufferLimit, or refused on every try) was answered 502 upstream_reset, which tells the app the
// upstream may have acted on it: a POST its app then dared not repeat. It is 503
// upstream_unavailable now, saying it was not processed and may be sent again, as the inbound
// answers an h2c app's refusal. Both codecs.

import t from 'tap';
import http from 'node:http';
import { makePki, request, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { startHostileUpstream } from '../helpers/hostile-upstream.js';
import { ERROR, frame, FRAME } from '../helpers/raw-h2.js';

function refuse(streamId: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(ERROR.REFUSED_STREAM);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

/** A chunked POST whose body is still coming when its answer arrives: status, error code, message. */
function uploadStillComing(port: number): Promise<{ status: number; error: unknown; message: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/orders', headers: { host: 'payments', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, error: res.headers['x-meshcar-error'], message: String((JSON.parse(text) as { message?: unknown }).message) });
      });
    });
    req.on('error', reject);
    req.write('the first part of the order');
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a request refused unprocessed that cannot be sent again is 503 upstream_unavailable`, async (t) => {
    const pki = await makePki(TD);
    const hostile = await startHostileUpstream(pki, (c, id) => c.write(refuse(id)));
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    const upload = await uploadStillComing(fx.port);
    t.match(upload, { status: 503, error: 'upstream_unavailable', message: /not processed/ }, `an upload still coming: ${JSON.stringify(upload)}`);
    const requestsBefore = hostile.requests;
    const get = await request(fx.port);
    t.equal(get.status, 503, `refused on every try: ${get.text}`);
    t.equal(get.headers['x-meshcar-error'], 'upstream_unavailable');
    t.equal(hostile.requests - requestsBefore, 3, 'sent three times (two retries) before that');
  });
}
