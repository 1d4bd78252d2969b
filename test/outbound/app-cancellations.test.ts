// When the app walks away from its own request, the outbound lets go of the upstream stream at
// once (RST_STREAM CANCEL), and holds nothing against the endpoint:
// - an upload the upstream answered in full before the body ended, then the app closing its
//   connection (as curl does): the stream was left half-open until the idle timeout (5 min),
//   holding a circuit-breaker slot, the endpoint's load and the active-streams gauge;
// - requests the app gives up on before the answer (its own timeout, shorter than a healthy
//   endpoint's answer): each counted as an endpoint failure, so enough of them ejected it.
// The upstream is a Node core http2 mTLS server; codec-node-app-cancellations.test.ts runs
// this file again with the outbound's sessions on the node codec (http2-wrapper) instead of the
// default, meshcar's own.

import t from 'tap';
import http from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { defaultHandler, makePki, request, sleep, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { parseResponse } from '../helpers/raw-http.js';

/** Upstream: /early answers 200 at once, reading (not waiting for) the upload; /hold never answers. */
async function startTestUpstream(pki: Awaited<ReturnType<typeof makePki>>) {
  const held: ServerHttp2Stream[] = [];
  const resetCodes: number[] = [];
  const upstream = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      const path = String(headers[':path']);
      if (path !== '/early' && path !== '/hold') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      stream.on('close', () => resetCodes.push(stream.rstCode ?? -1));
      stream.resume();
      if (path === '/hold') held.push(stream);
      else {
        stream.respond({ ':status': 200, 'content-length': 2 });
        stream.end('ok');
      }
    },
  });
  return { upstream, held, resetCodes };
}

/** Over raw TCP (the app as curl): announces 100000 bytes, sends 7, reads the whole answer, closes. */
function uploadAnsweredEarly(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('POST /early HTTP/1.1\r\nHost: payments\r\nContent-Length: 100000\r\n\r\npartial'));
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const res = parseResponse(received, false);
      if (res === undefined) return;
      socket.destroy();
      resolve(res.status);
    });
    socket.on('error', reject);
  });
}

t.test('an upload answered before its end, then the app gone: the stream and its circuit slot are released', async (t) => {
  const pki = await makePki(TD);
  const { upstream, resetCodes } = await startTestUpstream(pki);
  const fx = await startBalanced(pki, { ports: [upstream.port], circuitBreaker: { maxRequests: 2, maxPending: 2 } });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const active = () => fx.observer.streams.get('payments') ?? 0;
  for (let i = 1; i <= 2; i++) {
    t.equal(await uploadAnsweredEarly(fx.port), 200, `upload ${i}: the early answer reached the app`);
    await waitUntil(() => active() === 0, `upload ${i}: the upstream stream is released`);
    await waitUntil(() => resetCodes.length === i, `upload ${i}: the upstream stream closes`);
    t.equal(resetCodes[i - 1], http2.constants.NGHTTP2_CANCEL, `upload ${i}: the upstream got RST_STREAM CANCEL`);
  }
  const after = await request(fx.port, { path: '/echo' });
  t.equal(after.status, 200, 'maxRequests 2: the circuit still admits requests');
  t.equal(fx.observer.circuitOpen, 0);

  // the same on h2c, where the app resets its stream after the whole answer (its forwarder
  // always cancelled on the app's close; kept so it stays that way)
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  // a stream still open when the outbound closes is cut with GOAWAY(INTERNAL_ERROR), an 'error' here
  session.on('error', () => undefined);
  t.teardown(() => session.close());
  const stream = session.request({ ':method': 'POST', ':path': '/early', ':authority': 'payments' });
  stream.on('error', () => {});
  stream.write('partial');
  stream.resume();
  await new Promise((resolve) => stream.once('end', resolve));
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await waitUntil(() => active() === 0 && resetCodes.length === 3, 'h2c: the upstream stream is released');
  t.equal(resetCodes[2], http2.constants.NGHTTP2_CANCEL, 'h2c: the upstream got RST_STREAM CANCEL');
});

/** One endpoint that two failures in a row would eject, an h2c session to the outbound, and the upstream's held streams. */
async function oneEndpointEjectingAfterTwo(t: Tap.Test) {
  const pki = await makePki(TD);
  const { upstream, held } = await startTestUpstream(pki);
  const fx = await startBalanced(pki, {
    ports: [upstream.port],
    outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectionMs: 30_000, maxEjectionPercent: 100 },
  });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const active = () => fx.observer.streams.get('payments') ?? 0;
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  // a stream still open when the outbound closes is cut with GOAWAY(INTERNAL_ERROR), an 'error' here
  session.on('error', () => undefined);
  t.teardown(() => session.close());
  return { held, fx, active, session };
}

t.test('requests the app cancels before the answer do not eject the endpoint', async (t) => {
  const { held, fx, active, session } = await oneEndpointEjectingAfterTwo(t);
  // twice the failures that would eject it: HTTP/1.1 apps that close, h2c apps that reset
  for (let i = 1; i <= 4; i++) {
    let cancel: () => void;
    if (i % 2 === 1) {
      const req = http.request({ host: '127.0.0.1', port: fx.port, path: '/hold', headers: { host: 'payments' }, agent: false });
      req.on('error', () => {});
      req.end();
      cancel = () => req.destroy();
    } else {
      const stream = session.request({ ':method': 'GET', ':path': '/hold', ':authority': 'payments' });
      stream.on('error', () => {});
      cancel = () => stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    await waitUntil(() => held.length === i, `cancellation ${i}: the request reached the upstream`);
    cancel();
    await waitUntil(() => active() === 0 && (held[i - 1] as ServerHttp2Stream).closed, `cancellation ${i}: the upstream stream is cancelled`);
  }
  t.equal(fx.observer.ejections, 0, 'no ejection');
  const after = await request(fx.port, { path: '/echo' });
  t.equal(after.status, 200, 'the endpoint still serves');
  t.equal(fx.observer.ejections, 0);
});

// Node's h2 client resets with NO_ERROR on destroy(), which ends the app's body inside Node as
// a clean end would (broken-off-uploads.test.ts: the upstream gets RST_STREAM, not END_STREAM).
// That reset is the app leaving too: its record said 502 upstream_reset (an answer the app never
// saw, an error that was not the upstream's) and the cancelled stream counted as a failure of
// the endpoint, so an app breaking off uploads ejected a healthy one.
t.test('h2c uploads the app breaks off with NO_ERROR: recorded as left, the endpoint not ejected', async (t) => {
  const { held, fx, active, session } = await oneEndpointEjectingAfterTwo(t);
  for (let i = 1; i <= 3; i++) {
    const stream = session.request({ ':method': 'POST', ':path': '/hold', ':authority': 'payments', 'x-request-id': `broken-off-${i}` });
    stream.on('error', () => {});
    stream.write('partial');
    await waitUntil(() => held.length === i, `upload ${i}: the request reached the upstream`);
    stream.destroy(); // RST_STREAM(NO_ERROR)
    await waitUntil(() => active() === 0 && fx.observer.requests.length === i, `upload ${i}: recorded, the upstream stream released`);
    t.match(fx.observer.requests[i - 1], { requestId: `broken-off-${i}`, status: 499, errorCode: undefined }, `upload ${i}: recorded as left (499), no upstream_reset`);
  }
  t.equal(fx.observer.ejections, 0, 'no ejection (2 failures would have)');
  const after = await request(fx.port, { path: '/echo' });
  t.equal(after.status, 200, 'the endpoint still serves');
});
