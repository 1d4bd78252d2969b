// What the caller reads when an h2c app's answer is one Node's http2 client (nghttp2) refuses.
// A head with a field name in capitals is reset by the client itself (PROTOCOL_ERROR, RFC 9113
// §8.2.1), and a header block in more than 8 CONTINUATION frames (nghttp2's bound against the
// CONTINUATION flood) ends the session. Both were 502 upstream_reset 'the app closed the
// connection before answering', which it had not: the message now says a reset (and that it may
// be the client's, for an answer HTTP/2 forbids), and for a session nghttp2 ended, that the app
// broke the protocol (still upstream_reset: the session's other requests did nothing wrong).
// The app is raw frames over TCP.

import t from 'tap';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';
import { FLAG, FRAME, frame, headerBlock, startRawH2cApp } from '../helpers/raw-h2.js';

const CONTINUATION = 9;

/** A head cut into a HEADERS frame and nine CONTINUATIONs of 10 bytes each. */
function nineContinuations(id: number): Buffer[] {
  const block = headerBlock([[':status', '200'], ['x-a', 'v'.repeat(90)]]);
  const frames = [frame(FRAME.HEADERS, 0, id, block.subarray(0, 10))];
  for (let i = 0, at = 10; at < block.length; i++, at += 10) {
    frames.push(frame(CONTINUATION, at + 10 >= block.length ? FLAG.END_HEADERS : 0, id, block.subarray(at, at + 10)));
  }
  return [...frames, frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('x'))];
}

for (const [label, answer, code, message] of [
  ['a field name in capitals', (id: number) => [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock([[':status', '200'], ['X-Up', '1']]))], 'upstream_reset', /^the app's stream was reset before an answer \(.*PROTOCOL_ERROR\), by the app or for an answer HTTP\/2 does not allow/],
  ['a head in more than 8 CONTINUATIONs', nineContinuations, 'upstream_reset', /^the app's connection was closed before an answer: the app broke the HTTP\/2 protocol on it \(.+\)$/],
] as const) {
  t.test(`an h2c app's answer with ${label}: 502 ${code}, saying what happened`, async (t) => {
    const app = await startRawH2cApp(answer);
    const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port } });
    t.teardown(async () => {
      await fx.close();
      await app.close();
    });
    const res = await h1Request(fx.port, await fx.tlsOptions(), { path: '/odd' });
    t.equal(res.status, 502);
    t.equal(res.headers['x-meshcar-error'], code);
    const body = JSON.parse(res.body) as { message: string };
    t.match(body.message, message, body.message);
    t.notMatch(body.message, /the app closed the connection/, 'no connection closed by the app');
  });
}
