// Only a sidecar says it answered: an app's own x-meshcar-error is dropped from its answer's
// head (forwarding.test.ts), and now from its trailers too. In trailers it reached the calling
// app, where a sidecar puts it itself when it cuts a gRPC call (a drain), so an app could make
// its callers' gRPC clients take a cut by a sidecar for its own. Its other trailers pass. An
// HTTP/1.1 app (chunked, with trailers) and an h2c app, each behind a real inbound over mTLS.

import t from 'tap';
import type http from 'node:http';
import type http2 from 'node:http2';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const TRAILERS = { 'grpc-status': '0', 'x-checksum': 'abc', 'x-meshcar-error': 'upstream_unavailable' };

const http1App = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status, x-checksum, x-meshcar-error' });
  res.write('body');
  res.addTrailers(TRAILERS);
  res.end();
};

const h2cApp = (stream: http2.ServerHttp2Stream) => {
  stream.on('error', () => {});
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers(TRAILERS));
  stream.end('body');
};

for (const app of [
  { protocol: 'http' as const, handler: http1App },
  { protocol: 'h2c' as const, handler: h2cApp },
]) {
  t.test(`${app.protocol} app: its x-meshcar-error trailer is dropped, its other trailers pass`, async (t) => {
    const fx = await startInbound({ app });
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    const answer = await h2Request(caller, { ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' }, 'x');
    t.equal(answer.status, 200);
    t.equal(answer.body.toString(), 'body');
    t.equal(answer.trailers?.['grpc-status'], '0', 'grpc-status passes');
    t.equal(answer.trailers?.['x-checksum'], 'abc', 'an app trailer passes');
    t.equal(answer.trailers?.['x-meshcar-error'], undefined, "the app's x-meshcar-error does not");
  });
}
