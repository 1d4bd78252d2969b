// A WebSocket Upgrade toward an h2c app (inbound.app h2c://): refused with 502 bad_gateway
// saying why, after authorization, and nothing is sent to the app. An h2c app reads HTTP/2 only;
// the Upgrade's HTTP/1.1 head reached it as a broken preface and the caller read "the app sent
// a malformed response (HPE_INVALID_CONSTANT)".

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FRONTEND_ID, startInbound, TD } from '../helpers/inbound-fixture.js';
import { rawTlsUntilClosed } from '../helpers/raw-http.js';

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

t.test('an Upgrade toward an h2c app', async (t) => {
  const app = http2.createServer();
  let connections = 0;
  app.on('connection', () => connections++);
  app.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('plain');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const fx = await startInbound({
    externalApp: { protocol: 'h2c', port: (app.address() as AddressInfo).port },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/ws'] }],
  });
  t.teardown(async () => {
    await fx.close();
    app.close();
  });

  t.test('is refused with 502 bad_gateway that says why; the app sees nothing', async (t) => {
    const text = await rawTlsUntilClosed(fx.port, await fx.tlsOptions(), UPGRADE);
    t.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    t.match(text, /\r\nx-meshcar-error: bad_gateway\r\n/);
    t.match(text, /the app speaks h2c, which carries no Upgrade: a WebSocket needs an HTTP\/1\.1 app/, 'not "a malformed response (HPE_INVALID_CONSTANT)"');
    t.equal(connections, 0, 'no connection to the app');
    const record = (await fx.observer.waitForRequests(1)).at(-1);
    t.match(record, { status: 502, errorCode: 'bad_gateway', path: '/ws' });
  });

  t.test('after authorization: a caller not allowed in gets 403', async (t) => {
    const text = await rawTlsUntilClosed(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/intruder`), UPGRADE);
    t.match(text, /^HTTP\/1\.1 403 /);
    t.notMatch(text, /h2c/, 'nothing said of the app');
  });
});
