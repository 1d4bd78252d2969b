// Request smuggling through the whole pair: the app's HTTP/1.1 request to the outbound
// listener crosses the HTTP/2 hop and the peer's inbound to the peer's app. A complete DELETE
// hidden in the body of an allowed GET must arrive as that GET's body and nothing else, and an
// Upgrade with a body is refused at the outbound before anything leaves. Raw TCP toward the
// outbound, a real inbound with a recording HTTP/1.1 app behind it. A framing field past the
// 2000th line of a head (Node's parser frames the body by it, and used to leave it out of the
// fields it hands over): the outbound refuses the head (over 256 fields) with nothing sent, and
// the inbound passes the body on framed by it.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, SERVER_ID, TD, h1Request, startInbound } from '../helpers/inbound-fixture.js';
import { startOutbound } from '../helpers/outbound-fixture.js';
import { chunked, rawTcpRequest, rawTlsRequest } from '../helpers/raw-http.js';

const HIDDEN = `DELETE /admin/secret HTTP/1.1\r\nHost: orders\r\nx-forwarded-client-cert: By=x;URI=spiffe://${TD}/svc/admin\r\nContent-Length: 0\r\n\r\n`;

interface Seen {
  line: string;
  body: string;
  framing: string;
  contentLength: string | undefined;
}

/** An app that records each request whole (its line, body and framing) into `seen`, then answers 200 ok. */
function recordingApp(seen: Seen[]) {
  return {
    protocol: 'http' as const,
    handler: (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const contentLength = req.headers['content-length'];
        const framing = req.headers['transfer-encoding'] ? `te=${req.headers['transfer-encoding']}` : `cl=${contentLength ?? '-'}`;
        seen.push({ line: `${req.method} ${req.url}`, body: Buffer.concat(chunks).toString('utf8'), framing, contentLength });
        res.writeHead(200, { 'content-length': '2' }).end('ok');
      });
    },
  };
}

t.test('app → outbound → inbound → app: the hidden request stays a body', async (t) => {
  const seen: Seen[] = [];
  const fx = await startInbound({
    app: recordingApp(seen),
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

t.test('a framing field past the 2000th line of a head is seen, on both listeners', async (t) => {
  const seen: Seen[] = [];
  const fx = await startInbound({ app: recordingApp(seen) });
  t.teardown(() => fx.close());
  const out = await startOutbound(fx.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${fx.port}`], identity: SERVER_ID }]);
  t.teardown(() => out.close());
  // Host and 1999 short fields: 2000 lines, about 10 KB, within the 16 KiB head limit
  const filler = 'a:b\r\n'.repeat(1999);

  const head = (path: string) => `POST ${path} HTTP/1.1\r\nHost: orders\r\n${filler}Content-Length: 5\r\nConnection: close\r\n\r\nhello`;
  // Node counts only names and values against the 16 KiB: 8,000 `X:` lines (one byte each) are within it
  const emptyLines = 'X:\r\n'.repeat(8000);
  const emptyHead = (path: string) => `POST ${path} HTTP/1.1\r\nHost: orders\r\n${emptyLines}Content-Length: 5\r\nConnection: close\r\n\r\nhello`;

  // the outbound joins the 1999 `a` lines into one field, so the head is within the upstream's 256
  const outbound = await rawTcpRequest(out.port, head('/through-outbound'));
  t.equal(outbound.status, 200, 'app → outbound: answered');
  t.same(seen.map((r) => [r.line, r.body, r.contentLength]), [['POST /through-outbound', 'hello', '5']], 'the app got the body, framed by the Content-Length on line 2001');

  const inbound = await rawTlsRequest(fx.port, await fx.tlsOptions(), head('/inbound'));
  t.equal(inbound.status, 200, 'HTTP/1.1 caller → inbound: answered');
  t.same(seen.slice(1).map((r) => [r.line, r.body, r.contentLength]), [['POST /inbound', 'hello', '5']], 'the app got the body, framed by the Content-Length on line 2001');

  const before = seen.length;
  t.equal((await rawTcpRequest(out.port, emptyHead('/empty-lines-outbound'))).status, 200, 'app → outbound, 8,000 empty fields then Content-Length: answered');
  t.same(seen.slice(before).map((r) => [r.body, r.contentLength]), [['hello', '5']], 'app → outbound: the app got the body, framed by the Content-Length on line 8,002');
  // the inbound holds an HTTP/1.1 head to its limit as written (32 KB here): refused whole, nothing forwarded
  t.equal((await rawTlsRequest(fx.port, await fx.tlsOptions(), emptyHead('/empty-lines-inbound'))).status, 431, 'HTTP/1.1 caller → inbound, 8,000 empty fields (32 KB as written): 431');
  t.equal(seen.length, before + 1, 'and nothing of it reached the app');
});
