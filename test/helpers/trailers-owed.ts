// Test helper: an HTTP/2 server that answers all of its Content-Length (10 bytes) and then
// resets the stream with NO_ERROR where its trailers were due (a gRPC status on /grpc, an
// announced `x-checksum` elsewhere), and a call through an h2c session that says how the answer
// ended: `reset`, or `end grpc-status N` with the trailers that came (`end ` with none).

import http2 from 'node:http2';

export function resetBeforeTrailers(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const grpc = headers[':path'] === '/grpc';
  stream.respond({ ':status': 200, 'content-length': '10', ...(grpc ? { 'content-type': 'application/grpc' } : { trailer: 'x-checksum' }) }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
  stream.end('0123456789');
}

export function callOwedTrailers(session: http2.ClientHttp2Session, host: string, path: string, contentType?: string): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path, host, ...(contentType ? { 'content-type': contentType } : {}) });
    let trailers = '';
    stream.on('trailers', (fields) => (trailers = `grpc-status ${String(fields['grpc-status'])}`));
    stream.on('data', () => undefined);
    stream.on('end', () => resolve(`end ${trailers}`));
    stream.on('error', () => resolve('reset'));
  });
}
