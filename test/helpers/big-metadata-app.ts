// Test helper: an h2c app (Node's core http2, as grpc-js serves) whose gRPC-shaped answers carry
// 70 KB of metadata, which HTTP/2 allows and grpc-js takes direct: in the head on /head, in the
// trailers on /trailers; any other path a small answer, held on /hold until release() (a call
// in flight beside the big ones). Node's server sends a block over 64 KiB only when told, as
// grpc-js tells it. Closed when the test ends.

import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export const BIG_METADATA = 'h'.repeat(70 * 1024);
/** One gRPC message: uncompressed, 1 byte. */
export const GRPC_MESSAGE = Buffer.from([0, 0, 0, 0, 1, 0x78]);

export interface BigMetadataApp {
  readonly port: number;
  /** Answers the calls held on /hold. */
  release(): void;
}

export async function startBigMetadataApp(t: { teardown(fn: () => unknown): void }): Promise<BigMetadataApp> {
  const held: Array<() => void> = [];
  let released = false;
  const server = http2.createServer({ maxSendHeaderBlockLength: 1 << 20 });
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    stream.on('error', () => {});
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...(path === '/head' ? { 'x-bigh': BIG_METADATA } : {}) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', ...(path === '/trailers' ? { 'x-bigt': BIG_METADATA } : {}) }));
      stream.end(GRPC_MESSAGE);
    };
    if (path === '/hold' && !released) held.push(answer);
    else answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return {
    port: (server.address() as AddressInfo).port,
    release() {
      released = true;
      for (const answer of held.splice(0)) answer();
    },
  };
}
