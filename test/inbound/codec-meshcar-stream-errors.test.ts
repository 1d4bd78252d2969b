// http2.codec meshcar: a stream the codec resets because the caller broke a stream rule is
// counted in meshcar_http2_stream_errors_total{direction="inbound",reason}. A raw client sends
// an upper-case header name (malformed_headers) and a body shorter than its content-length
// (content_length_mismatch); the real TrafficMetrics and registry render the counts.

import t from 'tap';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { Direction, Http2StreamErrorReason } from '../../src/metrics/traffic.js';
import { FRONTEND_ID, startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, ERROR, errorCodeOf, FLAG, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const request = (path: string, extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> => [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', 'localhost'],
  [':path', path],
  ...extra,
];

t.test('stream errors on the meshcar codec count in meshcar_http2_stream_errors_total', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  const fx = await startInbound({ codec: 'meshcar' });
  t.teardown(() => fx.close());
  // the listener calls the optional method on the observer it was given, looked up per call
  Object.assign(fx.observer, { streamError: (direction: Direction, reason: Http2StreamErrorReason) => traffic.streamError(direction, reason) });

  const raw = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(requestHeaders(1, request('/echo', [['X-Upper', 'v']])));
  raw.write(requestHeaders(3, request('/echo', [['content-length', '10']]), false));
  raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 3, Buffer.from('hi')));
  for (const id of [1, 3]) {
    const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === id, `RST_STREAM on stream ${id}`);
    t.equal(errorCodeOf(rst), ERROR.PROTOCOL_ERROR, `stream ${id} reset with PROTOCOL_ERROR`);
  }

  const text = await metrics.render();
  t.match(text, /^# TYPE meshcar_http2_stream_errors_total counter$/m);
  t.match(text, /^meshcar_http2_stream_errors_total\{direction="inbound",reason="malformed_headers"\} 1$/m);
  t.match(text, /^meshcar_http2_stream_errors_total\{direction="inbound",reason="content_length_mismatch"\} 1$/m);
  t.notMatch(text, /meshcar_http2_sessions_closed_total\{/, 'a stream error leaves the connection open');
  // the sidecar's ForwardingObserver forwards every method TrafficMetrics' prototype has
  t.ok(Object.getOwnPropertyNames(TrafficMetrics.prototype).includes('streamError'), 'forwarded by the sidecar');
});

t.test('a content-length in trailers must be the body length, as nghttp2 holds it (both codecs reset otherwise)', async (t) => {
  for (const codec of ['meshcar', 'node'] as const) {
    const fx = await startInbound({ codec });
    t.teardown(() => fx.close());
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
    t.teardown(() => raw.destroy());
    for (const [id, length] of [[1, '99'], [3, '5']] as const) {
      raw.write(requestHeaders(id, request('/echo'), false));
      raw.write(frame(FRAME.DATA, 0, id, Buffer.from('hello')));
      raw.write(requestHeaders(id, [['content-length', length], ['x-t', 'v']], true));
    }
    const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, `${codec}: RST_STREAM on stream 1`);
    t.equal(errorCodeOf(rst), ERROR.PROTOCOL_ERROR, `${codec}: 5 bytes under a trailer content-length of 99: PROTOCOL_ERROR`);
    const answer = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 3, `${codec}: an answer on stream 3`);
    t.ok(answer, `${codec}: a trailer content-length equal to the body is taken`);
    t.notOk(raw.frames.some((f) => f.streamId === 1 && f.type === FRAME.HEADERS), `${codec}: stream 1 got no answer: the app never had it whole`);
  }
});

