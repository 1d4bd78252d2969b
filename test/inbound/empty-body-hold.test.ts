// An HTTP/2 caller's request whose head says content-length: 0 but leaves its stream open is
// held until the stream ends (src/inbound/empty-body-hold.ts): DATA that then comes makes the
// request malformed, the codec resets the stream, and the app never sees it; before, the app
// had acted on it before the DATA came. A clean end (no DATA) goes on as an empty body. Real
// mTLS callers (Node's http2 client), both codecs, an HTTP/1.1 and an h2c app that record what
// reaches them.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, startInbound, type FixtureOptions } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

function appFor(protocol: 'http' | 'h2c', seen: string[]): FixtureOptions['app'] {
  if (protocol === 'http') {
    return {
      protocol,
      handler: (req, res) => {
        seen.push(`${req.method} ${req.url} content-length=${req.headers['content-length']}`);
        req.resume();
        req.on('end', () => res.end('ok'));
      },
    };
  }
  return {
    protocol,
    handler: (stream, headers) => {
      seen.push(`${headers[':method']} ${headers[':path']} content-length=${headers['content-length']}`);
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    },
  };
}

/** A POST with content-length: 0 and no END_STREAM; `then` runs once the inbound has taken the head. */
function postWithEmptyHead(session: http2.ClientHttp2Session, then: (req: http2.ClientHttp2Stream) => void): Promise<string> {
  const req = session.request({ ':method': 'POST', ':path': '/charge', 'content-length': '0' }, { endStream: false });
  req.on('error', () => undefined);
  // the inbound reads a connection's frames in order: once this PING is answered, it has the head
  session.ping(() => then(req));
  return new Promise((resolve) => {
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => resolve(`status ${h[':status']}`));
    });
    req.on('close', () => resolve(`reset ${req.rstCode}`));
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const protocol of ['http', 'h2c'] as const) {
    t.test(`codec ${codec}, ${protocol} app: content-length 0 then DATA: reset, the app never sees it; then a clean end goes on`, async (t) => {
      const seen: string[] = [];
      const fx = await startInbound({ codec, app: appFor(protocol, seen) });
      t.teardown(() => fx.close());
      const session = await h2Connect(fx.port, await fx.tlsOptions());
      t.teardown(() => session.destroy());

      const malformed = await postWithEmptyHead(session, (req) => req.end('x'));
      t.equal(malformed, `reset ${http2.constants.NGHTTP2_PROTOCOL_ERROR}`, 'DATA past content-length 0: PROTOCOL_ERROR');
      t.same(seen, [], 'the app saw nothing of it');

      const empty = await postWithEmptyHead(session, (req) => req.end());
      t.equal(empty, 'status 200', 'the stream ended with no DATA: forwarded');
      await waitFor(async () => seen.length === 1, 5000, 'the request at the app');
      t.match(seen[0], /^POST \/charge content-length=0$/);
    });
  }
}
