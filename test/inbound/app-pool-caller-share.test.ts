// One caller cannot hold every connection to an HTTP/1.1 app (inbound/app-caller-share.ts). A
// compromised caller (a valid SVID, authorized) opens more uploads than the pool has
// connections and keeps each one trickling, a byte every 100 ms: each holds its connection, the
// request timeout never starts (it counts from the body's end) and the idle timeout never
// fires. Before, it held all of them and another caller's GET waited until its deadline (504);
// now it holds at most 7 of 8, and the other caller is answered at once. Real mTLS, raw frames
// from the attacker, the own pool (app-client-undici-app-pool-caller-share re-runs it on
// undici's), both codecs on the caller's hop.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { connectRawH2, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const UPLOAD: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost']];
const POOL = 8;
const UPLOADS = 20;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: trickling uploads of one caller leave the app connections' reserve to the others`, async (t) => {
    let uploadsAtApp = 0;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url !== '/upload') return void res.end('ok');
      uploadsAtApp += 1;
      req.resume();
      req.on('end', () => res.end('done'));
    };
    // the other caller's deadline: 2 s, far above an answer from a free connection
    const fx = await startInbound({ codec, app: { protocol: 'http', handler }, limits: { maxAppSockets: POOL }, timeoutMs: 2000 });
    t.teardown(() => fx.close());
    const attacker = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/compromised`), { ackSettings: true });
    t.teardown(() => attacker.destroy());
    const ids = Array.from({ length: UPLOADS }, (_, i) => 1 + 2 * i);
    for (const id of ids) attacker.write(Buffer.concat([requestHeaders(id, UPLOAD, false), frame(FRAME.DATA, 0, id, Buffer.from('a'))]));
    const trickle = setInterval(() => {
      for (const id of ids) attacker.write(frame(FRAME.DATA, 0, id, Buffer.from('a')));
    }, 100);
    t.teardown(() => clearInterval(trickle));
    await waitFor(async () => uploadsAtApp >= POOL - 1, 5000, 'the attacker holding its share of the connections');
    await new Promise((r) => setTimeout(r, 200)); // a few trickles more: any connection it could take, it has

    const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
    t.teardown(() => other.destroy());
    const started = Date.now();
    const answer = await h2Request(other, { ':method': 'GET', ':path': '/orders' });
    t.equal(answer.status, 200, `the other caller is answered (${answer.status}, ${Date.now() - started} ms)`);
    t.ok(Date.now() - started < 1_500, `well before its deadline (${Date.now() - started} ms)`);
    t.equal(uploadsAtApp, POOL - 1, `the attacker holds ${uploadsAtApp} of ${POOL} connections, its other uploads wait their turn`);
  });
}
