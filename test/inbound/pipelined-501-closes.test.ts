// A request with a transfer coding the inbound does not take (Transfer-Encoding: gzip, chunked)
// is answered 501 unsupported_transfer_coding and its connection closed, also when it was
// pipelined behind another request: by its turn Node had parsed its body, the close was left
// out, and the request pipelined behind it went on to the app (the HTTP/1.1 callers review).

import t from 'tap';
import { once } from 'node:events';
import tls from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startInbound } from '../helpers/inbound-fixture.js';

t.test('a 501 pipelined behind a slow request closes the connection; nothing after it reaches the app', async (t) => {
  const seen: string[] = [];
  const f = await startInbound({
    app: {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        seen.push(`${req.method} ${req.url}`);
        req.resume();
        // the first one answers late: the next requests wait their turn, their bodies parsed meanwhile
        setTimeout(() => res.end('ok'), req.url === '/slow' ? 200 : 0);
      },
    },
  });
  t.teardown(() => f.close());
  const socket = tls.connect({ ...(await f.tlsOptions()), port: f.port, host: '127.0.0.1', ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.write('GET /slow HTTP/1.1\r\nHost: orders\r\n\r\n' + 'POST /gz HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n' + 'GET /after HTTP/1.1\r\nHost: orders\r\n\r\n');
  // kept open, the connection would wait out the keep-alive timeout: 10 s is a failure
  const cut = setTimeout(() => socket.destroy(), 10_000);
  await once(socket, 'close');
  clearTimeout(cut);
  // an answer follows the previous body directly ("okHTTP/1.1 501 ...")
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  t.same(statuses, [200, 501], 'the slow request answered, then the 501, then nothing');
  t.match(text, /x-meshcar-error: unsupported_transfer_coding/i);
  t.same(seen, ['GET /slow'], 'the app saw the first request only');
});
