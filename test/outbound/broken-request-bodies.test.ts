// A chunked request body that breaks in the middle (a bad chunk size, a bare LF, a trailer
// Node's parser refuses) while its request is in flight upstream. Node's server tells that
// request nothing (the parse error is the connection's, 'clientError'), so it used to wait for
// its upstream's timeout, then answer 504 and count the endpoint as failed: five such apps
// ejected a healthy endpoint. Now the forwarder hears of it: 400 bad_request (JSON) if nothing
// was answered yet, the upstream stream cancelled (RST_STREAM CANCEL, not held against the
// endpoint), the connection closed. Both HTTP/2 codecs toward the upstream.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { defaultHandler, makePki, request, sleep, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { parseResponse, type RawResponse } from '../helpers/raw-http.js';

/** Sends `head`, then (once `ready()` holds) `rest`; resolves with the answer and whether the connection then closed. */
function brokenUpload(port: number, head: string, rest: string, ready: () => boolean): Promise<{ res: RawResponse | undefined; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port }, async () => {
      socket.write(head);
      await waitUntil(ready, 'the request reached the upstream').catch(() => {});
      socket.write(rest);
    });
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    socket.on('error', () => {});
    // bounded: the old behaviour answered after the upstream's timeout (3 s here)
    const timer = setTimeout(() => socket.destroy(), 8000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ res: parseResponse(received, true), closed: Date.now() - started < 8000, ms: Date.now() - started });
    });
  });
}

const BROKEN = [
  ['a bad chunk size', '3\r\nabc\r\nzz\r\n'],
  ['a bare LF after a chunk size', '3\nabc\r\n0\r\n\r\n'],
  ['Content-Length in the trailers', '3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n'],
] as const;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: a chunked body that breaks mid-request`, async (t) => {
    const pki = await makePki(TD);
    const streams: http2.ServerHttp2Stream[] = [];
    const resetCodes: number[] = [];
    const upstream = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        if (headers[':path'] !== '/hold') return defaultHandler(stream, headers, flags);
        stream.on('error', () => {});
        stream.on('close', () => resetCodes.push(stream.rstCode ?? -1));
        stream.resume(); // reads the body, never answers
        streams.push(stream);
      },
    });
    const fx = await startBalanced(pki, {
      codec,
      ports: [upstream.port],
      timeoutMs: 3000,
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectionMs: 30_000, maxEjectionPercent: 100 },
    });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const active = () => fx.observer.streams.get('payments') ?? 0;
    const head = 'POST /hold HTTP/1.1\r\nHost: payments\r\nTransfer-Encoding: chunked\r\nx-request-id: broken-body\r\n\r\n';

    let n = 0;
    for (const [name, bytes] of BROKEN) {
      n += 1;
      const seen = n;
      // the first chunk goes with the head; the broken part once the upstream stream exists
      const { res, closed, ms } = await brokenUpload(fx.port, `${head}1\r\nx\r\n`, bytes, () => streams.length === seen);
      t.equal(res?.status, 400, `${name}: 400`);
      t.equal(res?.headers['x-meshcar-error'], 'bad_request', `${name}: bad_request`);
      t.equal(JSON.parse(res?.body ?? '{}').requestId, 'broken-body', `${name}: our JSON body`);
      t.ok(closed && ms < 2500, `${name}: answered and closed at once, not at the upstream's timeout (${ms} ms)`);
      await waitUntil(() => active() === 0 && resetCodes.length === seen, `${name}: the upstream stream is released`);
      t.equal(resetCodes[seen - 1], http2.constants.NGHTTP2_CANCEL, `${name}: the upstream got RST_STREAM CANCEL`);
    }
    // all in one write: broken before any stream was opened
    const { res } = await brokenUpload(fx.port, `${head}3\r\nabc\r\nzz\r\n`, '', () => true);
    t.equal(res?.status, 400, 'broken in the first packet: 400');
    await waitUntil(() => active() === 0, 'nothing held');

    t.equal(fx.observer.ejections, 0, 'the endpoint was not ejected (2 failures would have)');
    const after = await request(fx.port, { path: '/echo' });
    t.equal(after.status, 200, 'the endpoint still serves');
    const records = fx.observer.requests.filter((r) => r.errorCode === 'bad_request');
    t.equal(records.length, BROKEN.length + 1, 'each recorded as bad_request');
  });
}

// An app that closes its connection (FIN) before its body is whole has left, as one that resets
// it has: recorded as 499 with no error, as the sidecar on the other side records the same
// request, not as a 400 bad_request it never read (an operator would look for malformed
// requests). Found by driving each outcome through a sidecar pair and reading both /metrics.
for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: an upload the app stops by closing its connection is a request it left`, async (t) => {
    const pki = await makePki(TD);
    const resetCodes: number[] = [];
    let opened = 0;
    const upstream = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        if (headers[':path'] !== '/upload') return defaultHandler(stream, headers, flags);
        opened += 1;
        stream.on('error', () => {});
        stream.on('close', () => resetCodes.push(stream.rstCode ?? -1));
        stream.resume(); // reads the body, never answers
      },
    });
    const fx = await startBalanced(pki, { codec, ports: [upstream.port], timeoutMs: 3000 });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const head = 'POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\nx-request-id: left-mid-body\r\n\r\n0123456789';
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: fx.port }, async () => {
        socket.write(head);
        await waitUntil(() => opened === 1, 'the request reached the upstream').catch(() => {});
        socket.end(); // FIN: 90 bytes of the body never come
      });
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('error', () => {});
      socket.on('close', () => resolve(received));
    });
    t.equal(answer, '', 'nothing answered on a connection the app closed');
    await waitUntil(() => fx.observer.requests.length === 1 && resetCodes.length === 1, 'recorded, the upstream stream released');
    t.match(fx.observer.requests[0], { peer: 'payments', path: '/upload', status: 499, errorCode: undefined, requestId: 'left-mid-body' }, 'recorded as left (499), no bad_request');
    t.equal(resetCodes[0], http2.constants.NGHTTP2_CANCEL, 'the upstream got RST_STREAM CANCEL');
    const after = await request(fx.port, { path: '/echo' });
    t.equal(after.status, 200, 'the endpoint still serves');
  });
}
