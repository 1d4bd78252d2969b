// An HTTP/1.1 app's answer head may be as large as an h2c app's and as every calling outbound
// takes (64 KiB): Node's parsers and undici stop at 16 KiB by default, and a 30 KB head (large
// cookies, a long Content-Security-Policy) was 502 bad_gateway (HPE_HEADER_OVERFLOW), held
// against the endpoint by its callers. Each HTTP/1.1 app client: meshcar's own (default),
// undici's pool (http1.appClient undici), and Node's (used for Expect: 100-continue). A head
// over 64 KiB is still refused: 502.

import t from 'tap';
import type http from 'node:http';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume();
  const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size'));
  res.writeHead(200, { 'x-big': 'b'.repeat(size), 'content-length': '2' });
  res.end('ok');
};

for (const client of ['meshcar', 'undici', 'node'] as const) {
  t.test(`app client ${client}: a 30 KB answer head is relayed; one over 64 KiB is 502`, async (t) => {
    if (client === 'undici') process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
    const fx = await startInbound({ app: { protocol: 'http', handler: app } });
    delete process.env.MESHCAR_TEST_APP_CLIENT;
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    // Node's client takes the requests that wait for a 100 Continue
    const head = (size: number) => ({ ':method': client === 'node' ? 'POST' : 'GET', ':path': `/?size=${size}`, ...(client === 'node' ? { expect: '100-continue' } : {}) });
    const body = client === 'node' ? 'x' : undefined;
    const big = await h2Request(caller, head(30_000), body);
    t.equal(big.status, 200, `30 KB head: ${big.status} ${big.status === 200 ? '' : big.body.toString()}`);
    t.equal(String(big.headers['x-big']).length, 30_000, 'the field whole');
    t.equal(big.body.toString(), 'ok');
    const over = await h2Request(caller, head(70_000), body);
    t.equal(over.status, 502, 'a head over 64 KiB: 502');
    t.match(over.body.toString(), /bad_gateway/);
  });
}
