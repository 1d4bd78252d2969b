// One caller's bad header must not take down the pooled h2c session other callers share. An
// h2c app (Node's http2 server) holds a victim's request open; an attacker, on its own mutual
// TLS connection, sends a header name that is no HTTP token (`x"a`), which Node's http2
// client, asked to send it, answers by destroying its whole session. Both codecs: the meshcar
// codec refuses the name (RST_STREAM), Node's drops the field, and the h2c forwarder checks
// fields before request() whatever a codec let through; the victim's request is answered.

import t from 'tap';
import type http2 from 'node:http2';
import { FRONTEND_ID, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, FRAME, pingRoundTrip, requestHeaders } from '../helpers/raw-h2.js';
import { waitFor } from '../h2/fixtures/h2-helpers.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: the victim's in-flight request survives an attacker's x"a header`, async (t) => {
    const paths: string[] = [];
    const names: string[] = [];
    let held: http2.ServerHttp2Stream | undefined;
    const fx = await startInbound({
      codec,
      app: {
        protocol: 'h2c',
        handler: (stream, headers) => {
          stream.on('error', () => {});
          paths.push(String(headers[':path']));
          names.push(...Object.keys(headers));
          if (headers[':path'] === '/slow') held = stream;
          else {
            stream.respond({ ':status': 200 });
            stream.end('ok');
          }
        },
      },
    });
    t.teardown(() => fx.close());
    const victim = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => victim.destroy());
    const answer = h2Request(victim, { ':path': '/slow' });
    await waitFor(() => held !== undefined, 'the victim’s request at the app');

    const attacker = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
    t.teardown(() => attacker.destroy());
    attacker.write(requestHeaders(1, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'orders'], [':path', '/attack'], ['x"a', '1']]));
    await attacker.waitFor((f) => (f.type === FRAME.RST_STREAM || f.type === FRAME.HEADERS) && f.streamId === 1, 'an answer or a reset for the attacker');
    await pingRoundTrip(attacker, 1);

    held!.respond({ ':status': 200 });
    held!.end('done');
    const res = await answer;
    t.equal(res.status, 200, 'the victim is answered');
    t.equal(res.body.toString(), 'done');
    // Node's codec drops the field and forwards the rest; ours refuses the whole request
    if (codec === 'meshcar') t.notOk(paths.includes('/attack'), 'the attacker’s request never reached the app');
    t.notOk(names.includes('x"a'), 'the bad name never reached the app');
    // the pooled session still serves
    t.equal((await h2Request(victim, { ':path': '/after' })).status, 200);
  });
}
