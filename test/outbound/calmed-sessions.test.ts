// An upstream session whose peer resets every new stream with ENHANCE_YOUR_CALM before answering
// it: a Node http2 server (an upstream sidecar on http2.codec: node, a Node app) does so once
// about 10 MB of answer bytes it had queued on streams its client reset count against the
// session's memory (maxSessionMemory), and keeps doing so until it has refused 100 streams and
// ends the session. The outbound kept handing that session new requests: with one endpoint, a
// hundred requests in a row were answered 502 bad_gateway (seen through real sidecars after an
// app had cancelled 177 large downloads). Now the session takes no new stream after such a reset
// (it closes once its streams end), and the request is retried on a new session when that is
// safe. Both codecs.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import type { ServerHttp2Session } from 'node:http2';
import { defaultHandler, makePki, request, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
import { startRetryOutbound } from '../helpers/retry-fixture.js';

/** Serves the first stream of each session; resets every later one with ENHANCE_YOUR_CALM, unanswered. */
function calmAfterFirst(): H2Handler {
  const served = new WeakSet<ServerHttp2Session>();
  return (stream, headers, flags) => {
    const session = stream.session as ServerHttp2Session;
    if (served.has(session)) {
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    served.add(session);
    defaultHandler(stream, headers, flags);
  };
}

/** Whether two refusals came one after the other: one poisoned session cost more than one request. */
function twoInARow(statuses: number[]): boolean {
  return statuses.some((s, i) => i > 0 && s !== 200 && statuses[i - 1] !== 200);
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a session whose peer resets new streams with ENHANCE_YOUR_CALM takes no more`, async (t) => {
    const pki = await makePki(TD);
    const up = await startUpstream(pki, { handler: calmAfterFirst() });
    const { port } = await startRetryOutbound(t, pki, { endpoints: [up.port], codec });
    t.teardown(() => up.close());
    const gets: number[] = [];
    for (let i = 0; i < 6; i++) gets.push((await request(port)).status);
    // a GET is retried on a new session: none is lost (a 502 for each after the first before)
    t.same(gets, [200, 200, 200, 200, 200, 200], `GETs: ${gets.join(' ')}`);
    const posts: number[] = [];
    for (let i = 0; i < 6; i++) posts.push((await request(port, { method: 'POST', body: 'x' })).status);
    // a POST is not sent again; the next request goes to a new session
    t.notOk(twoInARow(posts), `POSTs: ${posts.join(' ')}`);
    t.ok(posts.filter((s) => s === 200).length >= 3, `POSTs: ${posts.join(' ')}`);
  });

  t.test(`${codec} codec: after apps cancel large downloads, a Node upstream refusing the session's new streams costs at most one request`, async (t) => {
    const pki = await makePki(TD);
    const big = Buffer.alloc(4 << 20, 120);
    // the whole answer written at once, as a Node app or server does with a buffer it has: what
    // the client's windows do not take yet waits in the session
    const handler: H2Handler = (stream, headers, flags) => {
      if (headers[':path'] !== '/big') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-length': big.length });
      stream.end(big);
    };
    const up = await startUpstream(pki, { handler });
    const { port } = await startRetryOutbound(t, pki, { endpoints: [up.port], codec });
    t.teardown(() => up.close());
    // the app takes the first bytes of each download and gives up
    for (let i = 0; i < 8; i++) {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/big', headers: { host: 'payments' }, agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await request(port, { method: 'POST', body: 'x' })).status);
    t.notOk(twoInARow(statuses), `POSTs after the cancelled downloads: ${statuses.join(' ')}`);
  });
}
