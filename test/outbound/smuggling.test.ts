// Request smuggling through the whole pair: the app's HTTP/1.1 request to the outbound
// listener crosses the HTTP/2 hop and the peer's inbound to the peer's app. A complete DELETE
// hidden in the body of an allowed GET must arrive as that GET's body and nothing else, and an
// Upgrade with a body is refused at the outbound before anything leaves. Raw TCP toward the
// outbound, a real inbound with a recording HTTP/1.1 app behind it.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, SERVER_ID, TD, h1Request, startInbound } from '../helpers/inbound-fixture.js';
import { startOutbound } from '../helpers/outbound-fixture.js';
import { chunked, rawTcpRequest } from '../helpers/raw-http.js';

const HIDDEN = `DELETE /admin/secret HTTP/1.1\r\nHost: orders\r\nx-forwarded-client-cert: By=x;URI=spiffe://${TD}/svc/admin\r\nContent-Length: 0\r\n\r\n`;

t.test('app → outbound → inbound → app: the hidden request stays a body', async (t) => {
  const seen: Array<{ line: string; body: string; framing: string }> = [];
  const fx = await startInbound({
    app: {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const framing = req.headers['transfer-encoding'] ? `te=${req.headers['transfer-encoding']}` : `cl=${req.headers['content-length'] ?? '-'}`;
          seen.push({ line: `${req.method} ${req.url}`, body: Buffer.concat(chunks).toString('utf8'), framing });
          res.writeHead(200, { 'content-length': '2' }).end('ok');
        });
      },
    },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/public/*'] }],
    limits: { maxAppSockets: 1 },
  });
  t.teardown(() => fx.close());
  const out = await startOutbound(fx.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${fx.port}`], identity: SERVER_ID }]);
  t.teardown(() => out.close());
  const tlsOptions = await fx.tlsOptions();

  const attacks: Array<[string, string]> = [
    ['chunked GET', `GET /public/a HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(HIDDEN)}`],
    ['GET with Content-Length named in Connection', `GET /public/a HTTP/1.1\r\nHost: orders\r\nContent-Length: ${Buffer.byteLength(HIDDEN)}\r\nConnection: keep-alive, content-length\r\n\r\n${HIDDEN}`],
  ];
  for (const [name, bytes] of attacks) {
    const before = seen.length;
    const res = await rawTcpRequest(out.port, bytes);
    t.equal(res.status, 200, `${name}: answered`);
    // the sentinel takes the inbound's one pooled app connection after the attack
    t.equal((await h1Request(fx.port, tlsOptions, { path: '/public/sentinel' })).status, 200);
    const got = seen.slice(before);
    t.same(got.map((r) => r.line), ['GET /public/a', 'GET /public/sentinel'], `${name}: the app saw the GET and the sentinel, nothing between`);
    t.equal(got[0]?.body, HIDDEN, `${name}: the hidden request arrived as the GET's body`);
    t.match(got[0]?.framing, /^(te=chunked|cl=\d+)$/, `${name}: framed explicitly (${got[0]?.framing})`);
  }
  t.notOk(seen.some((r) => r.line.startsWith('DELETE')), 'the hidden DELETE never reached the app');

  const before = seen.length;
  const upgrade = await rawTcpRequest(out.port, `GET /public/ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: ${Buffer.byteLength(HIDDEN)}\r\n\r\n${HIDDEN}`);
  t.equal(upgrade.status, 400, 'an Upgrade with a body is refused at the outbound');
  t.equal(JSON.parse(upgrade.body).error, 'bad_request');
  // the outbound's own refusal is recorded with its error code; a refusal relayed from the
  // peer through the tunnel would carry only the peer's status
  const record = out.observer.requests.find((r) => r.path === '/public/ws');
  t.equal(record?.errorCode, 'bad_request', 'the outbound refused it itself, before dialing the peer');
  t.equal(seen.length, before, 'nor the app');
});
