// A caller that opens more HTTP/2 connections gets no more of the inbound's memory (meshcar
// codec). Each connection may hold its whole receive window of request bodies the app has not
// read (250 streams × 256 KiB = 62.5 MiB); without a shared bound a caller opening N
// connections held N times that (6 connections: +333 MB RSS, as many as it liked). All the
// connections of one SPIFFE ID now share one budget (inbound.limits maxBufferedPerCaller,
// 64 MiB): a DATA frame beyond it resets its stream ENHANCE_YOUR_CALM, counted as
// buffer_limit; another identity keeps its own budget, and a closed connection gives its part
// back. Raw frames over real mTLS, certificates from our CA, an app that does not read.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, errorCodeOf, ERROR, frame, FRAME, pingRoundTrip, requestHeaders, type RawH2Connection } from '../helpers/raw-h2.js';

const KiB = 1024;
const BUDGET = 1024 * KiB;
const STREAM_WINDOW = 256 * KiB;
const OTHER_ID = `spiffe://${TD}/svc/other`;

/** Requests the app never reads: their bodies stay with the inbound (one app connection, so the rest wait for it). */
const held = new Set<IncomingMessage>();
function neverReads(req: IncomingMessage, res: ServerResponse): void {
  req.pause();
  held.add(req);
  res.on('close', () => held.delete(req));
}

const chunk = Buffer.alloc(16 * KiB, 7);

/** Opens `count` uploads on `raw` (ids from `firstId`), each sending a full stream window of body, no END_STREAM. */
function fillStreams(raw: RawH2Connection, firstId: number, count: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + 2 * i;
    ids.push(id);
    raw.write(requestHeaders(id, [[':method', 'POST'], [':scheme', 'https'], [':path', `/upload/${id}`], [':authority', 'orders']], false));
    for (let sent = 0; sent < STREAM_WINDOW; sent += chunk.length) raw.write(frame(FRAME.DATA, 0, id, chunk));
  }
  return ids;
}

/** Streams of `ids` the server reset ENHANCE_YOUR_CALM. */
function calmed(raw: RawH2Connection, ids: readonly number[]): number[] {
  return ids.filter((id) => raw.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId === id && errorCodeOf(f) === ERROR.ENHANCE_YOUR_CALM));
}

t.test('the HTTP/2 connections of one caller identity share one budget for unread request bodies', async (t) => {
  const fx = await startInbound({
    codec: 'meshcar',
    app: { protocol: 'http', handler: neverReads },
    timeoutMs: 30_000,
    limits: { maxBufferedPerCaller: BUDGET, maxAppSockets: 1 },
  });
  t.teardown(async () => {
    for (const req of held) req.socket.destroy();
    await fx.close();
  });
  const open: RawH2Connection[] = [];
  t.teardown(() => open.forEach((c) => c.destroy()));
  const connect = async (id = FRONTEND_ID) => {
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(id), { ackSettings: true });
    open.push(raw);
    return raw;
  };

  // a connection of the caller's that stays open, so its budget outlives the others
  const keeper = await connect();
  await pingRoundTrip(keeper, 0);
  // the first connection fills the budget: 8 full stream windows are twice what it allows
  const first = await connect();
  const firstIds = fillStreams(first, 1, 8);
  await pingRoundTrip(first, 1);
  const firstCalmed = calmed(first, firstIds);
  t.ok(firstCalmed.length >= 3, `streams beyond the budget are reset ENHANCE_YOUR_CALM (${firstCalmed.length} of 8)`);
  t.ok(firstCalmed.length < 8, 'those within it are kept');

  // a second connection of the same identity finds the budget spent: it adds nothing
  const second = await connect();
  const secondIds = fillStreams(second, 1, 4);
  await pingRoundTrip(second, 2);
  // the uploads kept on both connections: the budget's worth, and the one whose body went on to
  // the app's connection (out of the budget once written; whether it was, when the first
  // connection's streams came, depends on the machine's timing)
  const secondCalmed = calmed(second, secondIds);
  const kept = firstIds.length - firstCalmed.length + secondIds.length - secondCalmed.length;
  t.ok(kept <= BUDGET / STREAM_WINDOW + 1, `a second connection of the same caller adds no memory: ${kept} uploads kept on both (its own: ${secondIds.length - secondCalmed.length} of ${secondIds.length}), at most the budget's ${BUDGET / STREAM_WINDOW} and the one at the app`);
  const counted = fx.observer.streamErrors.filter((r) => r === 'buffer_limit').length;
  t.equal(counted, firstCalmed.length + secondCalmed.length, 'each reset counted as a buffer_limit stream error');

  // another identity has a budget of its own
  const other = await connect(OTHER_ID);
  const otherIds = fillStreams(other, 1, 2);
  await pingRoundTrip(other, 3);
  t.same(calmed(other, otherIds), [], "another caller's uploads are held as before");

  // closed connections give their part back
  first.destroy();
  second.destroy();
  await Promise.all([first.closed, second.closed]);
  for (let i = 0; i < 200 && fx.inbound.connections > 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(fx.inbound.connections, 2, 'the inbound let go of both connections');
  const again = await connect();
  const againIds = fillStreams(again, 1, 2);
  await pingRoundTrip(again, 4);
  t.same(calmed(again, againIds), [], 'once those connections closed, the caller (still connected) has its whole budget again');
});

// those resets are ours (the app does not read, the budget is full), not the caller's doing: a
// caller inside its windows had its connection closed as MadeYouReset once they passed
// maxResetsPer10s, every healthy stream on it with it (a review)
t.test("the budget's resets are not the caller's abuse: its connection stays past maxResetsPer10s of them, not past ten times as many", async (t) => {
  const fx = await startInbound({
    codec: 'meshcar',
    app: { protocol: 'http', handler: neverReads },
    timeoutMs: 30_000,
    limits: { maxBufferedPerCaller: BUDGET, maxAppSockets: 1, maxResetsPer10s: 10 },
  });
  t.teardown(async () => {
    for (const req of held) req.socket.destroy();
    await fx.close();
  });
  const open: RawH2Connection[] = [];
  t.teardown(() => open.forEach((c) => c.destroy()));
  const first = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
  open.push(first);
  fillStreams(first, 1, 8); // the budget, full
  await pingRoundTrip(first, 1);
  const second = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
  open.push(second);
  const ids = fillStreams(second, 1, 30);
  await pingRoundTrip(second, 2);
  // all of them, but the first when the app's connection had taken the first connection's first
  // body out of the budget by then (the machine's timing: see the test above)
  const reset = calmed(second, ids);
  t.same(reset, ids.slice(ids.length - reset.length), `each upload past the budget reset ENHANCE_YOUR_CALM (${reset.length} of 30, three times maxResetsPer10s)`);
  t.ok(reset.length >= ids.length - 1, 'at most the first fits');
  t.same(second.frames.filter((f) => f.type === FRAME.GOAWAY).map(errorCodeOf), [], 'and no GOAWAY: the connection serves on');

  // but they have a budget of their own, ten times looser: a caller that keeps opening streams
  // into the full budget (each costing us a stream's setup) is cut off (a re-review)
  const more: number[] = [];
  for (let i = 0; i < 100; i++) {
    const id = 61 + 2 * i;
    more.push(id);
    second.write(requestHeaders(id, [[':method', 'POST'], [':scheme', 'https'], [':path', `/upload/${id}`], [':authority', 'orders']], false));
    second.write(frame(FRAME.DATA, 0, id, chunk));
  }
  await Promise.race([second.closed, new Promise((done) => setTimeout(done, 5000))]);
  const goaways = second.frames.filter((f) => f.type === FRAME.GOAWAY).map(errorCodeOf);
  t.same(goaways, [ERROR.ENHANCE_YOUR_CALM], `past 100 such resets (maxResetsPer10s × 10) with none completed: GOAWAY ENHANCE_YOUR_CALM (${calmed(second, more).length} more reset first)`);
});

t.test('bytes the app reads leave the budget: uploads far larger than it pass, several at once', async (t) => {
  const counts = (req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => res.end(String(bytes)));
  };
  const fx = await startInbound({ codec: 'meshcar', app: { protocol: 'http', handler: counts }, limits: { maxBufferedPerCaller: BUDGET } });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.destroy());
  const body = Buffer.alloc(4 * BUDGET, 3);
  const answers = await Promise.all([1, 2, 3].map((i) => h2Request(session, { ':method': 'POST', ':path': `/count/${i}` }, body)));
  t.same(
    answers.map((a) => [a.status, a.body.toString()]),
    [1, 2, 3].map(() => [200, String(body.length)]),
    'three 4 MiB uploads at once under a 1 MiB budget, each whole',
  );
  t.same(fx.observer.streamErrors, [], 'none reset');
});

// that budget is the caller's, as the bodies' is: spread over connections (up to
// maxConnectionsPerCaller), each connection's own allowance of such resets added up, and a
// GOAWAY cost the caller only a reconnect (a re-review)
t.test("the budget's resets are counted across the caller's connections too", async (t) => {
  const fx = await startInbound({
    codec: 'meshcar',
    app: { protocol: 'http', handler: neverReads },
    timeoutMs: 30_000,
    limits: { maxBufferedPerCaller: BUDGET, maxAppSockets: 1, maxResetsPer10s: 10 },
  });
  t.teardown(async () => {
    for (const req of held) req.socket.destroy();
    await fx.close();
  });
  const open: RawH2Connection[] = [];
  t.teardown(() => open.forEach((c) => c.destroy()));
  const connect = async () => {
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
    open.push(raw);
    return raw;
  };
  const filler = await connect();
  fillStreams(filler, 1, 8); // the budget, full
  await pingRoundTrip(filler, 1);
  // five connections, 30 resets each: under one connection's 100, 150 for the caller
  const spread: RawH2Connection[] = [];
  for (let n = 0; n < 5; n++) {
    const raw = await connect();
    spread.push(raw);
    for (let i = 0; i < 30; i++) {
      const id = 1 + 2 * i;
      raw.write(requestHeaders(id, [[':method', 'POST'], [':scheme', 'https'], [':path', `/upload/${id}`], [':authority', 'orders']], false));
      raw.write(frame(FRAME.DATA, 0, id, chunk));
    }
    await Promise.race([pingRoundTrip(raw, 10 + n).catch(() => undefined), raw.closed]);
  }
  const goaways = spread.map((raw) => raw.frames.filter((f) => f.type === FRAME.GOAWAY).map(errorCodeOf));
  t.same(goaways.slice(0, 3), [[], [], []], 'the first 90 resets (three connections): no GOAWAY');
  t.same(goaways[4], [ERROR.ENHANCE_YOUR_CALM], `past 100 for the caller, its connections are cut though each had only 30 (${JSON.stringify(goaways)})`);
});
