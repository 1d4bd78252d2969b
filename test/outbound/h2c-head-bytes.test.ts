// The outbound's h2c listener holds an app's request head to the same byte limit as its HTTP/1.1
// side (16 KiB by default). Node's HTTP/2 server advertises 64 KiB (SETTINGS_MAX_HEADER_LIST_SIZE)
// but applies it only once the client has acknowledged those settings: a head in the client's
// first flight (grpc-js and Node's client send their first calls at once) of 60 KB was
// forwarded. Such a head is now answered 431 headers_too_large with our JSON body (grpc-status
// RESOURCE_EXHAUSTED for a gRPC call) and never reaches the upstream. Later on the session Node
// reset one over the advertised size before our check, unanswered and unrecorded: 64 KiB is
// advertised now, so up to that it gets the same 431. The 431s are recorded (access log,
// metrics) as HTTP/1.1's are.
// Real sockets: Node h2c clients, the outbound, an mTLS upstream from the test CA.

import t from 'tap';
import http2 from 'node:http2';
import { h2cRequest, startOutboundToUpstream, type H2Result } from '../helpers/outbound-fixture.js';

/** One request as the first thing a fresh session sends (before it has seen the listener's SETTINGS). */
async function firstFlight(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Result> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await h2cRequest(session, headers, body);
  } finally {
    session.close();
  }
}

t.test('an h2c head over the limit is refused, never forwarded; one under it goes through', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);

  // 15,000 bytes of value plus the pseudo-headers: under 16,384
  const under = await firstFlight(fx.port, { ':path': '/small', 'x-big': 'a'.repeat(15_000) });
  t.equal(under.status, 200, 'a 15 KB head: forwarded');
  t.equal(upstream.requests, 1);

  const answered = new Map<string, number>();
  for (const size of [16_400, 60_000]) {
    const over = await firstFlight(fx.port, { ':path': '/big', 'x-request-id': `big-${size}`, 'x-big': 'a'.repeat(size) });
    t.equal(over.status, 431, `a ${size}-byte field in the first flight: 431`);
    t.equal(over.headers['x-meshcar-error'], 'headers_too_large');
    t.match(JSON.parse(over.body.toString()), { error: 'headers_too_large', requestId: `big-${size}`, message: /over the outbound listener's limit of 16384/ }, 'our JSON body, with the limit');
    answered.set(`big-${size}`, over.body.length);
  }

  // many small fields count too (32 bytes of overhead each, as RFC 9113 counts them)
  const fields: http2.OutgoingHttpHeaders = { ':path': '/many' };
  for (let i = 0; i < 600; i++) fields[`x-f${i}`] = 'v';
  t.equal((await firstFlight(fx.port, fields)).status, 431, '600 short fields (over 16 KiB with their overhead): 431');

  const grpc = await firstFlight(fx.port, { ':path': '/pkg.Svc/Call', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'x-big': 'a'.repeat(40_000) }, Buffer.alloc(5));
  t.equal(grpc.status, 200, 'gRPC: HTTP 200');
  t.equal(grpc.headers['grpc-status'] ?? grpc.trailers?.['grpc-status'], '8', 'grpc-status RESOURCE_EXHAUSTED');
  t.equal(upstream.requests, 1, 'none of them reached the upstream');
  // recorded as HTTP/1.1's 431 is (access log, metrics): they went unrecorded
  t.same(
    fx.observer.refused.map((r) => [r.direction, r.status, r.errorCode]),
    Array(4).fill(['outbound', 431, 'headers_too_large']),
    'each refusal recorded',
  );
  // with what was read of the head, and the bytes the answer had (a review found neither)
  for (const [requestId, bytes] of answered) {
    t.match(fx.observer.refused.find((r) => r.requestId === requestId), { method: 'GET', requestId, bytesOut: bytes }, `${requestId}: its record names its method and request id, and the ${bytes} bytes sent`);
  }
  t.equal(fx.observer.refused.at(-1)?.method, 'POST', "the gRPC call's record says POST");
  t.equal(fx.observer.refused.at(-1)?.bytesOut, 0, 'and 0 body bytes: its answer was trailers-only');

  // on a session past its SETTINGS exchange (every call of a long-lived gRPC channel but its
  // first): Node resets a head over the advertised size before our check sees it, unanswered
  // and unrecorded, so 64 KiB is advertised and a head up to that gets the same 431
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  t.equal((await h2cRequest(session, { ':path': '/warm' })).status, 200);
  t.equal(session.remoteSettings.maxHeaderListSize, 65536, 'advertised: 64 KiB');
  const later = await h2cRequest(session, { ':path': '/later', 'x-request-id': 'later', 'x-big': 'a'.repeat(40_000) });
  t.equal(later.status, 431, 'a 40 KB head later on the session: 431, not a bare reset');
  t.match(JSON.parse(later.body.toString()), { error: 'headers_too_large', requestId: 'later' });
  t.ok(fx.observer.refused.some((r) => r.requestId === 'later'), 'and recorded');
  await t.rejects(h2cRequest(session, { ':path': '/beyond', 'x-big': 'a'.repeat(70_000) }), { code: 'ERR_HTTP2_STREAM_ERROR' }, 'over 64 KiB: Node resets it');
  t.equal(upstream.requests, 2, 'neither forwarded');
  t.equal((await h2cRequest(session, { ':path': '/after' })).status, 200, 'the session still carries requests');
});
