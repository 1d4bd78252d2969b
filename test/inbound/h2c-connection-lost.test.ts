// An h2c app whose connection drops (reset or closed, no GOAWAY) as a request arrives on it: a
// GET was answered 502 upstream_reset "the app's stream was reset before an answer (stream
// reset with code 8)" and nothing retried it, where a pooled HTTP/1.1 connection the app had
// closed gets a repeatable bodiless request sent once more (app-http1.ts). Now the same holds
// for h2c: a GET is sent again on a new session and answered; a POST with a body is not sent
// twice (502). The app: Node's http2 server destroying its socket when a session's second
// stream arrives.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { FRAME, frame, readClientFrames } from '../helpers/raw-h2.js';
import { listening } from '../helpers/raw-http.js';

t.test("an h2c app's connection lost under a request: a GET is sent again on a new session, a POST is not", async (t) => {
  const seen: string[] = [];
  const h2 = http2.createServer();
  // each TCP connection is handed to the http2 server by hand, so its raw socket is at hand
  let arriving: net.Socket | undefined;
  h2.on('session', (session) => {
    const raw = arriving!;
    let streams = 0;
    session.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      seen.push(`${String(headers[':method'])} ${String(headers[':path'])}`);
      if (++streams === 2) {
        raw.destroy(); // dropped, no GOAWAY: an app closing an idle connection at the wrong moment
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('answered');
    });
  });
  const server = net.createServer((socket) => {
    arriving = socket;
    h2.emit('connection', socket);
  });
  const fx = await startInbound({ timeoutMs: 5000, externalApp: { protocol: 'h2c', port: await listening(t, server) } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());

  t.equal((await h2Request(caller, { ':path': '/first' })).status, 200, 'the first stream of the session is answered');
  const get = await h2Request(caller, { ':path': '/second' });
  t.equal(get.status, 200, `the GET whose connection dropped is sent again and answered (${get.status} ${get.body.toString()})`);
  t.same(seen.filter((s) => s === 'GET /second').length, 2, 'it reached the app twice: the dropped try, then the answered one');

  const post = await h2Request(caller, { ':method': 'POST', ':path': '/third' }, 'payload');
  const postAgain = await h2Request(caller, { ':method': 'POST', ':path': '/fourth' }, 'payload');
  // the new session's second stream is the POST that finds the connection dropped
  const dropped = [post, postAgain].find((a) => a.status !== 200);
  t.ok(dropped !== undefined, 'a POST met the dropped connection');
  t.equal(dropped?.status, 502, 'a POST is not sent twice: 502');
  t.equal(seen.filter((s) => s.startsWith('POST')).length, 2, 'each POST reached the app once');
});

t.test('a session the pool drops itself (a PING unanswered after a timeout): its requests are not sent again', async (t) => {
  // the app takes requests and then stalls (no answer, no PING ACK): it may be working on them
  const headersPerConnection: number[] = [];
  const server = net.createServer((socket) => {
    const index = headersPerConnection.push(0) - 1;
    socket.write(frame(FRAME.SETTINGS, 0, 0));
    readClientFrames(socket, (f) => {
      if (f.type === FRAME.HEADERS) headersPerConnection[index]!++;
    });
  });
  const fx = await startInbound({ timeoutMs: 1000, limits: { appPingTimeoutMs: 500 }, externalApp: { protocol: 'h2c', port: await listening(t, server) } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  t.equal((await h2Request(caller, { ':path': '/a' })).status, 504, 'the first GET times out; the session is probed');
  // on the same session while its PING is out; the pool drops the session before this one's deadline
  const second = await h2Request(caller, { ':path': '/b' });
  t.equal(second.status, 502, `the second GET fails with the dropped session (${second.body.toString()})`);
  t.same(headersPerConnection, [2], 'each GET reached the app once, on its one connection: none sent again');
});
