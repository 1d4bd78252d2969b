// A field repeated with an empty value, through the pair. Node's HTTP/1.1 parser joins repeats
// with ", ", so `X-E: v` then `X-E:` reads "v, ", which no HTTP/2 field value may be (trailing
// whitespace, RFC 9113 §8.2.1): the meshcar codec refused such a request (400) and Node's codec
// sent it, to have the peer drop the field, value and all. Now the value goes on without its
// trailing space, the same on both codecs; and so does an answer's (the inbound joins an HTTP/1.1
// app's repeats itself on the node codec). Raw TCP toward the outbound, a real inbound, an app
// that reports the fields it got.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { startOutbound } from '../helpers/outbound-fixture.js';
import { rawTcpRequest } from '../helpers/raw-http.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const peer = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req: IncomingMessage, res: ServerResponse) => {
          const body = JSON.stringify({ e: req.headers['x-e'] ?? null, f: req.headers['x-f'] ?? null });
          // and the answer repeats a field with an empty value too
          res.setHeader('x-r', ['v', '']);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
        },
      },
    });
    t.teardown(() => peer.close());
    const fx = await startOutbound(peer.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${peer.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => fx.close());

    const cases: Array<[string, string, { e: string | null; f: string | null }]> = [
      ['a value, then an empty repeat', 'X-E: v\r\nX-E:\r\n', { e: 'v,', f: null }],
      ['two empty', 'X-E:\r\nX-E:\r\n', { e: ',', f: null }],
      ['an empty one, then a value', 'X-E:\r\nX-E: v\r\n', { e: ', v', f: null }],
      ['one empty beside another field', 'X-E:\r\nX-F: w\r\n', { e: '', f: 'w' }],
    ];
    for (const [name, fields, expected] of cases) {
      const res = await rawTcpRequest(fx.port, `GET /x HTTP/1.1\r\nHost: orders\r\n${fields}Connection: close\r\n\r\n`);
      t.equal(res.status, 200, `${name}: through`);
      t.same(res.status === 200 ? JSON.parse(res.body) : res.body, expected, `${name}: the app got the values`);
      t.match(res.headers['x-r'], /^v,\s*$/, `${name}: the answer's repeated field came back`);
    }
  });
}
