// An app's answer whose trailers carry Connection (or Proxy-Connection): close. Node's llhttp
// reads the field there as in the head and refuses every later byte on that connection, so the
// connection must not go back to the pool: the next request would be written to the app (and
// acted on) and then answered 502 bad_gateway (HPE_CLOSED_CONNECTION). A raw TCP app keeps the
// connection open after such an answer and records which connection brought each request.

import t from 'tap';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { startRawApp, type RawRequestSeen } from '../helpers/raw-http.js';

const ANSWERS: Record<string, string> = {
  '/close-trailer': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nConnection: close\r\nX-Checksum: 1\r\n\r\n',
  '/proxy-close-trailer': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nProxy-Connection: close\r\n\r\n',
  '/next': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext',
};

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a Connection trailer retires the app connection`, async (t) => {
    const seen: RawRequestSeen[] = [];
    const app = await startRawApp((request, socket) => {
      seen.push(request);
      socket.write(ANSWERS[request.line.split(' ')[1] as string] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
    const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port }, codec });
    t.teardown(async () => {
      await fx.close();
      await app.close();
    });
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.close());

    for (const path of ['/close-trailer', '/proxy-close-trailer']) {
      const first = await h2Request(session, { ':method': 'GET', ':path': path });
      t.equal(first.status, 200, `${path}: answered`);
      t.equal(first.body.toString(), 'ok', `${path}: its whole body`);
      if (path === '/close-trailer') t.equal(first.trailers?.['x-checksum'], '1', 'the other trailer fields are still relayed');
      const before = seen.length;
      const next = await h2Request(session, { ':method': 'DELETE', ':path': '/next' });
      t.equal(next.status, 200, `${path}: the next request is answered, not 502`);
      t.equal(next.body.toString(), 'next');
      const trailerConnection = seen[before - 1]?.connection;
      t.same(
        seen.slice(before).map((r) => r.line),
        ['DELETE /next HTTP/1.1'],
        `${path}: the next request reached the app once`,
      );
      t.not(seen[before]?.connection, trailerConnection, `${path}: on a new connection, not the one the trailer closed`);
    }
  });
}
