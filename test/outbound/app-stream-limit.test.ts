// The outbound's h2c listener tells the app how many streams one connection may have open at
// once (SETTINGS_MAX_CONCURRENT_STREAMS), as its HTTP/1.1 side bounds pipelining: Node's server
// announces no limit, so one app connection opening 20,000 streams without reading had every
// one forwarded or refused and their state held (+122 MB RSS in a real outbound). A client that
// keeps to the limit (Node's, grpc-js, Go's) queues its calls beyond it: they all get through,
// never more at once than the limit. Real sockets: a Node h2c client, the outbound, a real mTLS
// upstream; both HTTP/2 codecs toward the upstream.

import t from 'tap';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { makePki, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';

const LIMIT = 4;
const CALLS = 10;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an app connection has at most maxAppStreams streams open, the rest queue at the client`, async (t) => {
    const pki = await makePki(TD);
    // the upstream holds each request until as many are open as may be (LIMIT, or what is
    // left), then answers them all: it sees how many the outbound forwarded at once
    const held: ServerHttp2Stream[] = [];
    let answered = 0;
    let mostAtOnce = 0;
    const upstream = await startUpstream(pki, {
      handler: (stream) => {
        stream.on('error', () => {});
        held.push(stream);
        mostAtOnce = Math.max(mostAtOnce, held.length);
        if (held.length < Math.min(LIMIT, CALLS - answered)) return;
        for (const s of held.splice(0)) {
          answered++;
          s.respond({ ':status': 200 });
          s.end('ok');
        }
      },
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec, maxAppStreams: LIMIT });
    const client = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(async () => {
      client.destroy();
      await fx.close();
      await upstream.close();
    });
    await new Promise<void>((resolve, reject) => {
      client.once('remoteSettings', () => resolve());
      client.once('error', reject);
    });
    t.equal(client.remoteSettings.maxConcurrentStreams, LIMIT, 'the listener announces its stream limit');

    const statuses = await Promise.all(
      Array.from({ length: CALLS }, () => new Promise<number>((resolve, reject) => {
        const req = client.request({ ':method': 'GET', ':path': '/x', ':authority': 'payments' });
        let status = 0;
        req.on('response', (head) => (status = Number(head[':status'])));
        req.on('error', reject);
        req.resume();
        req.on('close', () => resolve(status));
      })),
    );
    t.same(statuses, Array(CALLS).fill(200), 'every call beyond the limit waited at the client and got through');
    t.equal(answered, CALLS, 'the upstream answered each call once');
    t.ok(mostAtOnce <= LIMIT, `never more than ${LIMIT} forwarded at once (saw ${mostAtOnce})`);
  });
}
