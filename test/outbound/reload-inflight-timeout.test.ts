// A reload that lowers an upstream's timeout or idleTimeout is for new requests: a request in
// flight keeps the limits it came with, as the inbound's do. The outbound read the pool's values
// when the app's body ended, so an upload under way when the reload came was cut by the new,
// shorter timeout ('did not answer within 300 ms (outbound.upstreams.payments.timeout)'). A new
// request gets the new limits. A real HTTP/2 mTLS upstream, both codecs.

import t from 'tap';
import http from 'node:http';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { makePki, request, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

/** Answers /slow 1 s after the request's end, quiet meanwhile. */
const answerLate = (stream: import('node:http2').ServerHttp2Stream) => {
  stream.resume();
  stream.on('end', () => setTimeout(() => !stream.destroyed && (stream.respond({ ':status': 200 }), stream.end('late')), 1000));
};

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a reload lowering timeout and idleTimeout leaves a request in flight its own`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, { handler: answerLate });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 10_000, idleTimeoutMs: 10_000 }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    // an upload under way: its first bytes, then the reload, then its end
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/slow', headers: { host: 'payments', 'content-length': '10' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('01234');
      setTimeout(() => req.end('56789'), 300);
    });
    await sleep(100);
    const reloaded: UpstreamConfig[] = [{ name: 'payments', endpoints: [parseEndpoint(`127.0.0.1:${upstream.port}`) as Endpoint], identity: UPSTREAM_ID, timeoutMs: 300, idleTimeoutMs: 400, routes: [] }];
    fx.outbound.setUpstreams(reloaded);
    const inFlight = await answered;
    t.equal(inFlight.status, 200, `the request in flight keeps its 10 s limits: ${inFlight.body}`);
    t.equal(inFlight.body, 'late');
    const next = await request(fx.port, { method: 'POST', path: '/slow', body: 'x' });
    t.equal(next.status, 504, 'a new request gets the reloaded timeout');
    t.match(next.text, /within 300 ms/);
  });
}
