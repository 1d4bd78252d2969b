// A drain that runs out of time with requests still waiting for the app (for a connection to
// an HTTP/1.1 app, or a stream slot of an h2c app) refuses them as never processed: an HTTP/2
// caller's stream is reset REFUSED_STREAM (RFC 9113 §8.7), which a calling sidecar sends again
// elsewhere whatever the method, and an HTTP/1.1 caller gets 503 upstream_unavailable. Cut with
// their session instead, they were 502s the caller had to take as maybe processed. The request
// the app did have is cut, and its HTTP/2 caller is told so with an error (GOAWAY
// INTERNAL_ERROR), not a clean end. Both codecs.

import t from 'tap';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { h1Request, h2Connect, startInbound, type Http1Handler } from '../helpers/inbound-fixture.js';
import { waitUntil } from '../helpers/outbound-fixture.js';

/** What became of an HTTP/2 request: its status, or the reset code and whether it errored. */
function outcome(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path }, { endStream: true });
    let status = 0;
    let errored = false;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('error', () => (errored = true));
    stream.resume();
    stream.on('close', () => resolve(status !== 0 ? `status ${status}` : `reset ${stream.rstCode}${errored ? ' with an error' : ''}`));
  });
}

/** Node's client reports a stream the server reset with an error code as an 'error' too. */
const REFUSED = `reset ${http2.constants.NGHTTP2_REFUSED_STREAM} with an error`;

const slowApp: Http1Handler = (req, res) => {
  req.resume();
  setTimeout(() => res.end('late'), 10_000).unref();
};

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an HTTP/1.1 app with one connection`, async (t) => {
    const seen: string[] = [];
    const fx = await startInbound({ codec, app: { protocol: 'http', handler: (req, res) => (seen.push(req.url ?? ''), slowApp(req, res)) }, limits: { maxAppSockets: 1 } });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.destroy());
    const sent = outcome(session, '/sent');
    await waitUntil(() => seen.length === 1, 'the first request at the app');
    const waiting = [outcome(session, '/waiting-1'), outcome(session, '/waiting-2')];
    const waitingH1 = h1Request(fx.port, tlsOptions, { path: '/waiting-3', method: 'POST' });
    await waitUntil(() => fx.inbound.inFlight === 4, 'three more waiting for the connection');
    await fx.inbound.drain(300);
    t.same(await Promise.all(waiting), [REFUSED, REFUSED], 'the waiting HTTP/2 requests: REFUSED_STREAM, never processed');
    const h1 = await waitingH1;
    t.equal(h1.status, 503, 'the waiting HTTP/1.1 request: 503');
    t.match(JSON.parse(h1.body), { error: 'upstream_unavailable', message: /not processed and may be sent again/ });
    t.match(await sent, /with an error$/, 'the request the app had is cut with an error, not a clean end');
    t.same(seen, ['/sent'], 'the app saw only the first');
  });

  t.test(`${codec} codec: an h2c app with one stream slot`, async (t) => {
    const seen: string[] = [];
    const app = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
    app.on('stream', (stream, headers) => {
      seen.push(String(headers[':path']));
      stream.on('error', () => {});
      stream.resume();
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => app.close(() => resolve())));
    const fx = await startInbound({ codec, externalApp: { protocol: 'h2c', port: (app.address() as AddressInfo).port } });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    const sent = outcome(session, '/sent');
    await waitUntil(() => seen.length === 1, 'the first request at the app');
    const waiting = [outcome(session, '/waiting-1'), outcome(session, '/waiting-2')];
    await waitUntil(() => fx.inbound.inFlight === 3, 'two more waiting for a stream slot');
    await fx.inbound.drain(300);
    t.same(await Promise.all(waiting), [REFUSED, REFUSED], 'REFUSED_STREAM, never processed');
    t.match(await sent, /with an error$/, 'the request the app had is cut with an error');
    t.same(seen, ['/sent']);
  });
}
