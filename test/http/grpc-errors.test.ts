// The sidecar's own errors toward a gRPC caller (src/http/status.ts): trailers-only answers
// with grpc-status, a percent-encoded grpc-message and x-meshcar-error, over a real HTTP/1.1
// server (gRPC-Web) and a real HTTP/2 server; other callers keep the JSON error.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { MeshcarError } from '../../src/errors.js';
import { effectiveStatus, grpcAnswerType, grpcMessage, grpcStatusFor, isErrorCode, sendError, sendStreamError } from '../../src/http/status.js';

t.test('which requests are gRPC, and the answer type they get', async (t) => {
  t.equal(grpcAnswerType('application/grpc'), 'application/grpc');
  t.equal(grpcAnswerType('application/grpc+proto'), 'application/grpc');
  t.equal(grpcAnswerType('application/grpc;charset=utf-8'), 'application/grpc');
  t.equal(grpcAnswerType('application/grpc-web+proto'), 'application/grpc-web');
  t.equal(grpcAnswerType('application/grpc-web-text'), 'application/grpc-web-text');
  t.equal(grpcAnswerType('Application/GRPC'), 'application/grpc', 'media types are case-insensitive');
  t.equal(grpcAnswerType('application/grpcfoo'), undefined, 'a longer media type is not gRPC');
  t.equal(grpcAnswerType('application/json'), undefined);
  t.equal(grpcAnswerType(undefined), undefined);
});

t.test('a sidecar error answered as gRPC is judged by the status it stands for', async (t) => {
  t.equal(effectiveStatus(200, { 'x-meshcar-error': 'upstream_unavailable', 'grpc-status': '14' }), 503, 'retries, balancing and ejection see the 503');
  t.equal(effectiveStatus(200, { 'x-meshcar-error': 'rate_limited' }), 429);
  t.equal(effectiveStatus(200, {}), 200, "the app's own answer is what it says");
  t.equal(effectiveStatus(200, { 'x-meshcar-error': 'constructor' }), 200, 'only meshcar codes count, never an inherited property name');
  t.equal(isErrorCode('__proto__'), false);
  t.equal(isErrorCode('forbidden'), true);
});

t.test('gRPC statuses by meaning', async (t) => {
  t.equal(grpcStatusFor('upstream_timeout'), 4, 'DEADLINE_EXCEEDED');
  t.equal(grpcStatusFor('forbidden'), 7, 'PERMISSION_DENIED');
  t.equal(grpcStatusFor('identity_not_allowed'), 7);
  t.equal(grpcStatusFor('rate_limited'), 8, 'RESOURCE_EXHAUSTED');
  t.equal(grpcStatusFor('no_route'), 12, 'UNIMPLEMENTED, as Envoy answers a missing route');
  t.equal(grpcStatusFor('upstream_unavailable'), 14, 'UNAVAILABLE');
  t.equal(grpcStatusFor('circuit_open'), 14);
  t.equal(grpcStatusFor('bad_svid'), 16, 'UNAUTHENTICATED');
  t.equal(grpcStatusFor('internal'), 13, 'INTERNAL');
});

t.test('grpc-message is percent-encoded UTF-8', async (t) => {
  t.equal(grpcMessage('the app did not answer within 300 ms'), 'the app did not answer within 300 ms');
  t.equal(grpcMessage('100% "done"'), '100%25 "done"');
  t.equal(grpcMessage('line\nbreak'), 'line%0Abreak');
  t.equal(grpcMessage('café'), 'caf%C3%A9');
  t.equal(decodeURIComponent(grpcMessage('µs → ms, 50%')), 'µs → ms, 50%', 'round-trips');
});

t.test('HTTP/1.1 (gRPC-Web): 200, grpc-status in the headers, no body', async (t) => {
  const server = http.createServer((req, res) => {
    sendError(res, new MeshcarError('rate_limited', 'slow down', { retryAfterSeconds: 2 }), { requestId: 'r1', grpcType: grpcAnswerType(req.headers['content-type']) });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const answer = async (contentType: string) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-type': contentType, 'content-length': 0 } });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let body = '';
    for await (const chunk of res) body += String(chunk);
    return { status: res.statusCode, headers: res.headers, body };
  };
  const grpcWeb = await answer('application/grpc-web+proto');
  t.equal(grpcWeb.status, 200);
  t.equal(grpcWeb.headers['content-type'], 'application/grpc-web');
  t.equal(grpcWeb.headers['grpc-status'], '8');
  t.equal(grpcWeb.headers['grpc-message'], 'slow down');
  t.equal(grpcWeb.headers['x-meshcar-error'], 'rate_limited');
  t.equal(grpcWeb.headers['x-request-id'], 'r1');
  t.equal(grpcWeb.headers['retry-after'], '2');
  t.equal(grpcWeb.body, '');
  const plain = await answer('application/json');
  t.equal(plain.status, 429, 'a JSON caller keeps the JSON error');
  t.same(JSON.parse(plain.body), { error: 'rate_limited', message: 'slow down', requestId: 'r1' });
});

t.test('HTTP/2: one HEADERS frame with END_STREAM, no DATA', async (t) => {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    sendStreamError(stream, new MeshcarError('upstream_timeout', 'no answer in 300 ms'), 'r2', grpcAnswerType(headers['content-type']));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.teardown(() => {
    client.close();
    server.close();
  });
  const req = client.request({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: true });
  const [headers, flags] = (await once(req, 'response')) as [http2.IncomingHttpHeaders, number];
  t.equal(headers[':status'], 200);
  t.equal(headers['content-type'], 'application/grpc');
  t.equal(headers['grpc-status'], '4');
  t.equal(headers['grpc-message'], 'no answer in 300 ms');
  t.equal(headers['x-meshcar-error'], 'upstream_timeout');
  t.ok(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'trailers-only: the header block ends the stream');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await once(req, 'end');
  t.equal(bytes, 0);
});
