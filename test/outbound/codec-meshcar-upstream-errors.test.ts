// http2.codec meshcar on the outbound: an upstream that breaks HTTP/2 is counted, and the app
// gets a 502, never a crash. The upstream is a raw TLS server (our test PKI, ALPN h2) that
// writes frames by hand: a response header name in upper case and a body shorter than its
// content-length are stream errors (meshcar_http2_stream_errors_total{direction="outbound"});
// DATA on stream 0 is a connection error (meshcar_http2_sessions_closed_total{direction=
// "outbound",reason="protocol_error"}). The real TrafficMetrics and registry render the counts.
// An upstream doing it on every session is logged once per window, every close counted.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { Direction, Http2StreamErrorReason, SessionRejectReason } from '../../src/metrics/traffic.js';
import { makePki, request, startOutbound, TD, UPSTREAM_ID, waitUntil } from '../helpers/outbound-fixture.js';
import { FLAG, frame, FRAME, headerBlock, settingsFrame } from '../helpers/raw-h2.js';
import { memoryLogger } from '../helpers/ca.js';

type Misbehaviour = 'upper-case header' | 'short body' | 'DATA on stream 0';

/** Answers every request with the same misbehaviour; records the RST_STREAMs and GOAWAYs it gets. */
async function startHostileUpstream(pki: Awaited<ReturnType<typeof makePki>>, mode: Misbehaviour) {
  const leaf = await pki.issue(UPSTREAM_ID);
  const resets: number[] = [];
  let goaways = 0;
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (socket) => {
    socket.on('error', () => {});
    socket.write(settingsFrame());
    let buffered = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!prefaceSeen) {
        if (buffered.length < 24) return;
        buffered = buffered.subarray(24);
        prefaceSeen = true;
      }
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) return;
        const type = buffered.readUInt8(3);
        const flags = buffered.readUInt8(4);
        const id = buffered.readUInt32BE(5) & 0x7fffffff;
        const payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (type === FRAME.RST_STREAM) resets.push(payload.readUInt32BE(0));
        if (type === FRAME.GOAWAY) goaways++;
        if (type === FRAME.HEADERS) answer(socket, id);
      }
    });
  });
  const answer = (socket: tls.TLSSocket, id: number) => {
    if (mode === 'upper-case header') socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock([[':status', '200'], ['X-Upper', 'v']])));
    if (mode === 'short body') {
      socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200'], ['content-length', '10']])));
      socket.write(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('hi')));
    }
    if (mode === 'DATA on stream 0') socket.write(frame(FRAME.DATA, 0, 0, Buffer.from('nonsense')));
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, resets, goaways: () => goaways, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

t.test('an upstream breaking HTTP/2 on the meshcar codec: 502 to the app, counted by kind', async (t) => {
  const pki = await makePki(TD);
  const upper = await startHostileUpstream(pki, 'upper-case header');
  const short = await startHostileUpstream(pki, 'short body');
  const stream0 = await startHostileUpstream(pki, 'DATA on stream 0');
  const fx = await startOutbound(
    pki,
    [
      { name: 'upper', endpoints: [`127.0.0.1:${upper.port}`] },
      { name: 'short', endpoints: [`127.0.0.1:${short.port}`] },
      { name: 'stream0', endpoints: [`127.0.0.1:${stream0.port}`] },
    ],
    { codec: 'meshcar' },
  );
  t.teardown(async () => {
    await fx.close();
    await Promise.all([upper.close(), short.close(), stream0.close()]);
  });
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  // the outbound calls the optional methods on the observer it was given, looked up per call
  Object.assign(fx.observer, {
    streamError: (direction: Direction, reason: Http2StreamErrorReason) => traffic.streamError(direction, reason),
    sessionRejected: (direction: Direction, reason: SessionRejectReason) => traffic.sessionRejected(direction, reason),
  });
  // POST: never retried, so each misbehaviour is met exactly once
  const call = (host: string) => request(fx.port, { method: 'POST', path: '/x', body: 'x', headers: { host } });

  t.equal((await call('upper')).status, 502, 'an upper-case response header name: 502');
  await waitUntil(() => upper.resets.length > 0, 'the upstream gets RST_STREAM', 5000);
  t.same(upper.resets, [1], 'the upstream got RST_STREAM PROTOCOL_ERROR');
  const cut = await call('short').catch((err: Error) => err);
  // the head may already be with the app when the body ends short: then the app sees the cut
  t.ok(cut instanceof Error || cut.status === 502, `a body shorter than its content-length never reaches the app as complete (${cut instanceof Error ? cut.message : cut.status})`);
  await waitUntil(() => short.resets.length > 0, 'the upstream gets RST_STREAM', 5000);
  t.same(short.resets, [1], 'the upstream got RST_STREAM PROTOCOL_ERROR');
  t.equal((await call('stream0')).status, 502, 'DATA on stream 0: 502');
  await waitUntil(() => stream0.goaways() === 1, 'the upstream gets a GOAWAY', 5000);

  const text = await metrics.render();
  t.match(text, /^meshcar_http2_stream_errors_total\{direction="outbound",reason="malformed_headers"\} 1$/m);
  t.match(text, /^meshcar_http2_stream_errors_total\{direction="outbound",reason="content_length_mismatch"\} 1$/m);
  t.match(text, /^meshcar_http2_sessions_closed_total\{direction="outbound",reason="protocol_error"\} 1$/m);
  // and the outbound keeps serving: a fresh session for the next call
  t.equal((await call('stream0')).status, 502, 'still answering, on a new session');
});

t.test('an upstream breaking HTTP/2 on session after session: every close counted, one warn line', async (t) => {
  const pki = await makePki(TD);
  const hostile = await startHostileUpstream(pki, 'DATA on stream 0');
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'breaker', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec: 'meshcar', logger: memoryLogger(lines) });
  t.teardown(async () => {
    await fx.close();
    await hostile.close();
  });
  const closed: SessionRejectReason[] = [];
  Object.assign(fx.observer, { sessionRejected: (_d: Direction, reason: SessionRejectReason) => closed.push(reason) });
  for (let i = 0; i < 8; i++) t.equal((await request(fx.port, { method: 'POST', path: '/x', body: 'x', headers: { host: 'breaker' } })).status, 502);
  await waitUntil(() => closed.length === 8, '8 sessions closed', 5000);
  const warned = lines.filter((l) => l.level === 40 && String(l.msg).startsWith('outbound HTTP/2 session closed'));
  t.equal(warned.length, 1, `8 sessions closed for protocol_error, ${warned.length} warn line`);
});

