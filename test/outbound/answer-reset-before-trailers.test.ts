// An upstream's answer of its whole Content-Length, closed by RST_STREAM(NO_ERROR) before its
// END_STREAM, is taken as whole on `http2.codec: node` (the reset overtook a queued END_STREAM,
// as nghttp2 lets a server's own reset do): but not when trailers were still due, a gRPC
// status or fields a `trailer` head field announced. Such an answer is a cut: reset toward an
// app, or a failing gRPC status, never a clean end without what it owed.

import t from 'tap';
import http2 from 'node:http2';
import { startH2cAppToUpstream } from '../helpers/outbound-fixture.js';

t.test('http2.codec node: an upstream answer reset before the trailers it owed is a cut', async (t) => {
  const { session } = await startH2cAppToUpstream(t, 'node', {
    handler: (stream, headers) => {
      const grpc = headers[':path'] === '/grpc';
      stream.respond({ ':status': 200, 'content-length': '10', ...(grpc ? { 'content-type': 'application/grpc' } : { trailer: 'x-checksum' }) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
      stream.end('0123456789');
    },
  });
  const call = (path: string, contentType?: string) =>
    new Promise<string>((resolve) => {
      const stream = session.request({ ':path': path, host: 'payments', ...(contentType ? { 'content-type': contentType } : {}) });
      let trailers = '';
      stream.on('trailers', (fields) => (trailers = `grpc-status ${String(fields['grpc-status'])}`));
      stream.on('data', () => undefined);
      stream.on('end', () => resolve(`end ${trailers}`));
      stream.on('error', () => resolve('reset'));
    });
  t.equal(await call('/checksum'), 'reset', 'an answer that announced trailers: reset toward the app');
  const grpc = await call('/grpc', 'application/grpc');
  t.ok(grpc === 'reset' || /^end grpc-status [1-9]/.test(grpc), `a gRPC answer: a reset or a failing status, never a status-less end (${grpc})`);
});
