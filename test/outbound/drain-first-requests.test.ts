// The outbound drain's wait for connections taken before the listener closed whose first request
// is still coming (src/outbound/drain-first-requests.ts, listener.ts): an h2c session begun after
// a wind-down counts as waiting until its first stream, and is told GOAWAY with that stream in.
// A drain winds the listener down twice when the inbound side still serves a call at its time
// (once then, once at the listener's close): the second wind-down told such a session GOAWAY
// before its first stream, which was then refused (a re-review). Real listener, real h2c client.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppListener } from '../../src/outbound/listener.js';
import { silent } from '../helpers/outbound-fixture.js';

t.test('an h2c session begun between two wind-downs has its first stream answered, told GOAWAY with it', async (t) => {
  const listener = new AppListener(
    {
      request: (_req: IncomingMessage, res: ServerResponse) => res.end('h1'),
      upgrade: (_req, socket) => socket.destroy(),
      stream: (stream) => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      },
      brokenBody: () => false,
    },
    { maxHeaderBytes: 16384, keepAliveTimeoutMs: 60_000, maxAppStreams: 1024, headersTimeoutMs: 10_000 },
    silent,
  );
  const bound = await listener.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => listener.destroyAll());
  // the first wind-down, at the drain's time, with the listener still open
  listener.windDown();
  const session = http2.connect(`http://127.0.0.1:${bound.port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const seen: string[] = [];
  session.on('goaway', (code: number, lastStreamId: number) => seen.push(`goaway ${code} last ${lastStreamId}`));
  await once(session, 'remoteSettings');
  t.equal(listener.connectionsWithoutRequest(), 1, 'the session counts as waiting for its first stream');
  // the second, at the listener's close
  listener.stopAccepting();
  listener.windDown();
  t.equal(listener.connectionsWithoutRequest(), 1, 'and still does after the second wind-down');
  const stream = session.request({ ':path': '/', ':authority': 'orders' });
  const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  seen.push(`answer ${headers[':status']}`);
  stream.resume();
  await once(stream, 'end');
  // (in either order: this handler answers in the same turn as the stream comes)
  t.same([...seen].sort(), ['answer 200', 'goaway 0 last 1'], 'its first stream answered, and GOAWAY naming it as processed');
  t.equal(listener.connectionsWithoutRequest(), 0, 'no longer waiting');
});
