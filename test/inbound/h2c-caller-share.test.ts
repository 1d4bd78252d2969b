// One caller cannot hold every stream slot toward an h2c app (inbound/h2c-caller-share.ts). A
// compromised caller (a valid SVID, authorized) opens more uploads than the app allows streams
// (8 here, the app's SETTINGS_MAX_CONCURRENT_STREAMS) and keeps each one trickling, a byte
// every 100 ms: each holds its slot, the request timeout never starts (it counts from the
// body's end) and the idle timeout never fires. Before, it held all 8 and another caller's GET
// waited for a slot until its deadline (504); now it holds at most 7, and the other caller is
// answered at once. Real mTLS, raw frames from the attacker, an h2c app, both codecs.

import t from 'tap';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { connectRawH2, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const UPLOAD: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost']];
const APP_STREAMS = 8;
const UPLOADS = 20;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: trickling uploads of one caller leave the h2c app's slots' reserve to the others`, async (t) => {
    let uploadsAtApp = 0;
    const handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      stream.on('error', () => {});
      if (headers[':path'] !== '/upload') return void stream.respond({ ':status': 200 }, { endStream: true });
      uploadsAtApp += 1;
      stream.resume();
      // the teardown may cut it first
      stream.on('end', () => void (stream.destroyed || stream.respond({ ':status': 200 }, { endStream: true })));
    };
    const app = http2.createServer({ settings: { maxConcurrentStreams: APP_STREAMS } });
    app.on('stream', handler);
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const fx = await startInbound({ codec, externalApp: { protocol: 'h2c', port: (app.address() as AddressInfo).port }, timeoutMs: 2000 });
    t.teardown(async () => {
      await fx.close();
      await new Promise((resolve) => app.close(resolve));
    });
    const attacker = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/compromised`), { ackSettings: true });
    t.teardown(() => attacker.destroy());
    const ids = Array.from({ length: UPLOADS }, (_, i) => 1 + 2 * i);
    for (const id of ids) attacker.write(Buffer.concat([requestHeaders(id, UPLOAD, false), frame(FRAME.DATA, 0, id, Buffer.from('a'))]));
    const trickle = setInterval(() => {
      for (const id of ids) attacker.write(frame(FRAME.DATA, 0, id, Buffer.from('a')));
    }, 100);
    t.teardown(() => clearInterval(trickle));
    await waitFor(async () => uploadsAtApp >= APP_STREAMS - 1, 5000, 'the attacker holding its share of the slots');
    await new Promise((r) => setTimeout(r, 200)); // a few trickles more: any slot it could take, it has

    const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
    t.teardown(() => other.destroy());
    const started = Date.now();
    const answer = await h2Request(other, { ':method': 'GET', ':path': '/orders' });
    t.equal(answer.status, 200, `the other caller is answered (${answer.status}, ${Date.now() - started} ms)`);
    t.ok(Date.now() - started < 1_500, `well before its deadline (${Date.now() - started} ms)`);
    t.equal(uploadsAtApp, APP_STREAMS - 1, `the attacker holds ${uploadsAtApp} of ${APP_STREAMS} slots, its other uploads wait their turn`);
  });
}
