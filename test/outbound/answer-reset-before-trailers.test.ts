// An upstream's answer of its whole Content-Length, closed by RST_STREAM(NO_ERROR) before its
// END_STREAM, is taken as whole on `http2.codec: node` (the reset overtook a queued END_STREAM,
// as nghttp2 lets a server's own reset do): but not when trailers were still due, a gRPC
// status or fields a `trailer` head field announced. Such an answer is a cut: reset toward an
// app, or a failing gRPC status, never a clean end without what it owed.

import t from 'tap';
import { startH2cAppToUpstream } from '../helpers/outbound-fixture.js';
import { callOwedTrailers, resetBeforeTrailers } from '../helpers/trailers-owed.js';

t.test('http2.codec node: an upstream answer reset before the trailers it owed is a cut', async (t) => {
  const { session } = await startH2cAppToUpstream(t, 'node', { handler: resetBeforeTrailers });
  const call = (path: string, contentType?: string) => callOwedTrailers(session, 'payments', path, contentType);
  t.equal(await call('/checksum'), 'reset', 'an answer that announced trailers: reset toward the app');
  const grpc = await call('/grpc', 'application/grpc');
  t.ok(grpc === 'reset' || /^end grpc-status [1-9]/.test(grpc), `a gRPC answer: a reset or a failing status, never a status-less end (${grpc})`);
});
