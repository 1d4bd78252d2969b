// An HTTP/1.1 app's answer with no body (204, 205) given while the caller's HTTP/2 upload is
// still coming: the caller's stream is released at once, as for a 200 (RFC 9113 §8.1: the
// answer ends the stream, then RST_STREAM NO_ERROR). A 205 took the trailers path (Node
// frames it chunked), which both codecs end with the head, and the stream then waited for
// trailers that never came: held until the upload ended or the idle timeout (5 min by default;
// review of session 8's diff, L1). Both HTTP/2 codecs of the inbound.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a bodiless answer before the caller's upload ends releases the stream`, async (t) => {
    const fx = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          res.writeHead(Number(String(req.url).slice(1)));
          res.end();
        },
      },
    });
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    for (const path of ['/204', '/205', '/200']) {
      const req = caller.request({ ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream' });
      req.on('error', () => {});
      let status: string | undefined;
      req.on('response', (h) => (status = String(h[':status'])));
      req.resume();
      req.write(Buffer.alloc(1000)); // the upload goes on, never ended
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        new Promise<string>((done) => req.on('close', () => done('closed'))),
        new Promise<string>((done) => (timer = setTimeout(() => done('still open'), 3000))),
      ]);
      clearTimeout(timer);
      t.equal(status, path.slice(1), `${path}: the answer came`);
      t.equal(outcome, 'closed', `${path}: the stream was released while the upload was still open`);
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    }
  });
}
