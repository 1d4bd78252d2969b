// An h2c app that stops in the middle of a response body with RST_STREAM NO_ERROR (Node's
// stream.destroy(); RFC 9113 §8.1 allows NO_ERROR only after a complete answer) has cut that
// body: the caller's stream is reset with an error code, never ended with END_STREAM as if the
// body were whole. Node's http2 client toward the app ends such a stream's readable side itself;
// before, the inbound relayed that end. Both codecs on the caller's side.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: an h2c app's body cut with RST_STREAM NO_ERROR reaches the caller cut`, async (t) => {
    const fx = await startInbound({
      codec,
      app: {
        protocol: 'h2c',
        handler: (stream, headers) => {
          stream.on('error', () => {});
          stream.respond({ ':status': 200 });
          if (headers[':path'] === '/whole') stream.end(Buffer.alloc(100, 0x61));
          // the 100 bytes reach the inbound first; then RST_STREAM NO_ERROR, no END_STREAM
          else stream.write(Buffer.alloc(100, 0x61), () => setImmediate(() => stream.destroy()));
        },
      },
    });
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());

    const cut = await h2Request(caller, { ':path': '/cut' });
    t.equal(cut.status, 200);
    t.equal(cut.body.length, 100, 'the 100 bytes sent');
    t.ok(cut.rstCode !== undefined && cut.rstCode !== http2.constants.NGHTTP2_NO_ERROR, `reset with an error code, not ended (rstCode ${cut.rstCode})`);
    const whole = await h2Request(caller, { ':path': '/whole' });
    t.equal(whole.body.length, 100, 'a whole body still ends as usual');
    t.equal(whole.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });
}
