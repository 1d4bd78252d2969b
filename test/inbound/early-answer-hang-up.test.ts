// An HTTP/1.1 app that answers an upload before reading its body (413, or a whole 200) and then
// hangs up: it closes its connection with the body unread, so its kernel sends a TCP reset, or
// it resets it outright. The reset failed the inbound's next write of the body, and Node's
// socket destroyed itself on that failure, losing the app's complete answer that had come
// before the reset and was still unread in the kernel: the caller was told 502 "the app closed
// the connection before answering (ECONNRESET)" (or EPIPE), and metrics counted a 502. Now the
// answer is relayed whole, counted as the app's status, and the rest of the upload dropped.
// An answer cut in its middle by the reset stays an error. A raw TCP app; callers through a real
// outbound → inbound pair on both HTTP/2 codecs, an HTTP/1.1 TLS caller straight to the inbound
// (also with Expect: 100-continue, which node:http carries to the app), and a raw HTTP/2 TLS
// caller (whose stream gets the answer, then RST_STREAM(NO_ERROR)).

import t from 'tap';
import type net from 'node:net';
import { h1Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { postUpload, startPairToApp } from '../helpers/pair-to-app.js';
import { startRawApp } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/mesh.js';
import { connectRawH2, describe, errorCodeOf, FLAG, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

/** Several MiB: far more than the socket buffers hold, so the app's hang-up meets a write still going. */
const UPLOAD = Buffer.alloc(8 * 1024 * 1024, 97);

const HANG_UPS: Record<string, (socket: net.Socket) => void> = {
  // a close with the body unread: the kernel answers it with a reset
  'closes with the body unread': (socket) => socket.destroy(),
  'resets the connection': (socket) => socket.resetAndDestroy(),
};

const ANSWERS = [
  { status: 413, text: 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\nX-App: early\r\n\r\ntoo big', body: 'too big' },
  { status: 200, text: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-App: early\r\n\r\nstored', body: 'stored' },
] as const;

/** An app that answers every request at its head with `answer`, then hangs up as `hangUp` says. */
function startHangingUpApp(answer: string, hangUp: (socket: net.Socket) => void) {
  return startRawApp((_request, socket) => socket.write(answer, () => hangUp(socket)));
}

async function recorded(t: Tap.Test, fx: InboundFixture, count: number): Promise<Array<[number, string | null]>> {
  await waitFor(async () => fx.observer.requests.length >= count, 10_000, `${count} requests recorded`).catch(() => undefined);
  return fx.observer.requests.map((r) => [r.status, r.errorCode ?? null]);
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const [how, hangUp] of Object.entries(HANG_UPS)) {
    for (const answer of ANSWERS) {
      t.test(`codec ${codec}: the app answers ${answer.status} at the head of an upload and ${how}: the caller gets that answer`, async (t) => {
        const app = await startHangingUpApp(answer.text, hangUp);
        t.teardown(() => app.close());
        const { inbound: fx, outbound } = await startPairToApp(t, app.port, codec);
        for (let i = 1; i <= 3; i++) {
          const res = await postUpload(outbound.port, UPLOAD);
          t.same(res, { status: answer.status, header: 'early', body: answer.body }, `upload ${i} through the pair: the app's answer, head and body`);
        }
        const res = await h1Request(fx.port, await fx.tlsOptions(), { method: 'POST', path: '/upload', body: UPLOAD });
        t.same([res.status, res.headers['x-app'], res.body], [answer.status, 'early', answer.body], 'an HTTP/1.1 caller straight to the inbound: the same');
        t.same(await recorded(t, fx, 4), Array(4).fill([answer.status, null]), "each counted as the app's status, none as an error");
        await waitFor(async () => fx.inbound.inFlight === 0, 10_000, 'the exchanges to end').catch(() => undefined);
        t.equal(fx.inbound.inFlight, 0, 'no exchange left in flight');
      });
    }
  }
}

for (const [how, hangUp] of Object.entries(HANG_UPS)) {
  t.test(`an Expect: 100-continue upload (carried by node:http), the app answers 413 and ${how}: the caller gets that answer`, async (t) => {
    const app = await startHangingUpApp(ANSWERS[0].text, hangUp);
    const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
    t.teardown(async () => {
      await fx.close();
      await app.close();
    });
    for (let i = 1; i <= 2; i++) {
      // the caller sends its body at once, without waiting for a 100 (RFC 9110 allows it)
      const res = await h1Request(fx.port, await fx.tlsOptions(), { method: 'POST', path: '/upload', headers: { expect: '100-continue' }, body: UPLOAD });
      t.same([res.status, res.headers['x-app'], res.body], [413, 'early', 'too big'], `upload ${i}: the app's answer`);
    }
    t.same(await recorded(t, fx, 2), Array(2).fill([413, null]), "each counted as the app's 413");
    await waitFor(async () => fx.inbound.inFlight === 0, 10_000, 'the exchanges to end').catch(() => undefined);
    t.equal(fx.inbound.inFlight, 0, 'no exchange left in flight');
  });
}

t.test('an HTTP/2 caller straight to the inbound gets the answer, then RST_STREAM(NO_ERROR)', async (t) => {
  const app = await startHangingUpApp(ANSWERS[0].text, HANG_UPS['resets the connection'] as (socket: net.Socket) => void);
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
  t.teardown(() => raw.destroy());
  // the head and the first 60 KB of a 1 MB upload (within the initial window), the rest never sent
  raw.write(requestHeaders(1, [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost'], ['content-length', '1000000']], false));
  for (let i = 0; i < 4; i++) raw.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(15_000, 97)));
  const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'RST_STREAM on stream 1', 10_000);
  const onStream = raw.frames.filter((f) => f.streamId === 1);
  t.equal(errorCodeOf(rst), 0, `RST_STREAM(NO_ERROR): stop sending, no error (${describe(onStream)})`);
  const ended = onStream.findIndex((f) => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0);
  t.ok(ended !== -1 && ended < onStream.indexOf(rst), "after the answer's END_STREAM");
  t.equal(Buffer.concat(onStream.filter((f) => f.type === FRAME.DATA).map((f) => f.payload)).toString(), 'too big', 'the whole answer came');
  t.same(await recorded(t, fx, 1), [[413, null]], "counted as the app's 413");
});

t.test('an answer the hang-up cuts in its middle is still an error, not a whole answer', async (t) => {
  // a head promising 100 bytes, 10 of them, then the reset
  const app = await startHangingUpApp('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789', HANG_UPS['resets the connection'] as (socket: net.Socket) => void);
  t.teardown(() => app.close());
  const { inbound: fx, outbound } = await startPairToApp(t, app.port, 'meshcar');
  const viaPair = await postUpload(outbound.port, UPLOAD).then(
    (res) => (res.status === 200 ? `a 200 of ${res.body.length} bytes, taken as whole` : `status ${res.status}`),
    (err: Error) => `broken off (${err.message})`,
  );
  t.not(viaPair, 'a 200 of 10 bytes, taken as whole', `through the pair: not taken for a whole answer (${viaPair})`);
  const direct = await h1Request(fx.port, await fx.tlsOptions(), { method: 'POST', path: '/upload', body: UPLOAD }).then(
    (res) => `a ${res.status} of ${res.body.length} bytes, taken as whole`,
    (err: Error) => `broken off (${err.message})`,
  );
  t.match(direct, /^broken off/, `an HTTP/1.1 caller straight to the inbound: the answer broken off (${direct})`);
  const records = await recorded(t, fx, 2);
  t.ok(records.length === 2 && records.every(([, code]) => code !== null), `both recorded as errors (${JSON.stringify(records)})`);
});
