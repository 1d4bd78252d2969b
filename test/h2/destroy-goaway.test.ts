// H2Connection.destroy() without a code still sends a last GOAWAY (NO_ERROR) naming the last
// stream it processed, as Node's session.destroy() does: the sidecar destroys connections that
// way (a certificate path expiring, a drain running out of time), and a peer must learn which
// of its requests were processed, not see the socket vanish. A raw client over mutual TLS.

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import { rawClientOf, startOurServer, waitFor } from './fixtures/h2-helpers.js';
import { errorCodeOf, FRAME, lastStreamOf, requestHeaders } from '../helpers/raw-h2.js';

t.test('destroy() with no code sends GOAWAY(NO_ERROR) with the last processed stream', async (t) => {
  const server = await startOurServer((stream) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
  }, { tls: true });
  t.teardown(() => server.close());
  const raw = await rawClientOf(t, server.port);
  raw.write(requestHeaders(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'x']]));
  await raw.waitFor((f) => f.type === FRAME.DATA && f.streamId === 1, 'the answer on stream 1');
  await waitFor(() => server.connections.length === 1, 'the server connection');
  server.connections[0]!.destroy();
  const goaway = await raw.waitFor((f) => f.type === FRAME.GOAWAY, 'a GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.NO_ERROR);
  t.equal(lastStreamOf(goaway), 1, 'names stream 1 as processed');
  await raw.closed;
});
