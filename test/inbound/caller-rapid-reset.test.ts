// Rapid reset (CVE-2023-44487) is budgeted per caller identity as well as per connection
// (meshcar codec). Counted per connection only, a caller spreading its resets over N
// connections got N allowances, and a GOAWAY cost it a reconnect. The connections of one
// SPIFFE ID share one count now; it trips, as each connection's does, only when the resets
// also outnumber the caller's completed streams, so the replicas of a busy service (one
// identity) cancelling now and then keep their connections. Raw frames over real mTLS,
// certificates from our CA.

import t from 'tap';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD, type InboundFixture } from '../helpers/inbound-fixture.js';
import { connectRawH2, ERROR, errorCodeOf, frame, FRAME, pingRoundTrip, requestHeaders, type RawH2Connection } from '../helpers/raw-h2.js';

const BILLING_ID = `spiffe://${TD}/svc/billing`;
const LIMIT = 10;
const PER_CONNECTION = 8; // under LIMIT: no connection trips its own count
const CANCEL = Buffer.from([0, 0, 0, 8]);
const get = (path: string) => [[':method', 'GET'], [':scheme', 'https'], [':authority', 'orders'], [':path', path]] as const;

/** `count` streams opened (ids from `firstId`) and reset (CANCEL) at once on `raw`, then a PING answered or the connection closed. */
async function openAndReset(raw: RawH2Connection, count: number, tag: number, firstId = 1): Promise<void> {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(requestHeaders(firstId + 2 * i, get(`/r/${i}`)), frame(FRAME.RST_STREAM, 0, firstId + 2 * i, CANCEL));
  raw.write(Buffer.concat(frames));
  await Promise.race([pingRoundTrip(raw, tag).catch(() => undefined), raw.closed]);
}

const goawaysOf = (raw: RawH2Connection) => raw.frames.filter((f) => f.type === FRAME.GOAWAY).map(errorCodeOf);

async function fixture(t: Tap.Test): Promise<{ fx: InboundFixture; connect: (id?: string) => Promise<RawH2Connection> }> {
  const fx = await startInbound({ codec: 'meshcar', limits: { maxResetsPer10s: LIMIT } });
  const open: RawH2Connection[] = [];
  t.teardown(async () => {
    open.forEach((c) => c.destroy());
    await fx.close();
  });
  const connect = async (id = FRONTEND_ID) => {
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(id), { ackSettings: true });
    open.push(raw);
    return raw;
  };
  return { fx, connect };
}

t.test("a caller's premature resets count across its connections", async (t) => {
  const { fx, connect } = await fixture(t);
  const spread: RawH2Connection[] = [];
  for (let n = 0; n < 4; n++) {
    const raw = await connect();
    spread.push(raw);
    await openAndReset(raw, PER_CONNECTION, n);
  }
  const goaways = spread.map(goawaysOf);
  t.same(goaways[0], [], `the first ${PER_CONNECTION} resets (one connection): no GOAWAY`);
  t.same(goaways[3], [ERROR.ENHANCE_YOUR_CALM], `past ${LIMIT} for the caller, its connections are cut though each reset only ${PER_CONNECTION} (${JSON.stringify(goaways)})`);

  // another identity has a count of its own
  const other = await connect(BILLING_ID);
  await openAndReset(other, PER_CONNECTION, 9);
  t.same(goawaysOf(other), [], "another caller's resets are its own");
  const session = await h2Connect(fx.port, await fx.tlsOptions(BILLING_ID));
  t.teardown(() => session.destroy());
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/orders' })).status, 200, 'and it is served');
});

// the count outlives the caller's connections for its window: forgotten with the last one, a
// caller resetting on one connection after another started each afresh (a re-review)
t.test('one connection after another: the count is kept between them', async (t) => {
  const { fx, connect } = await fixture(t);
  const goaways: number[][] = [];
  for (let n = 0; n < 3; n++) {
    const raw = await connect();
    await openAndReset(raw, PER_CONNECTION, n);
    goaways.push(goawaysOf(raw));
    raw.destroy();
    await raw.closed;
    for (let i = 0; i < 200 && fx.inbound.connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.equal(fx.inbound.connections, 0, `connection ${n + 1} closed before the next opens`);
  }
  t.same(goaways[0], [], 'the first connection: no GOAWAY');
  t.same(goaways[2], [ERROR.ENHANCE_YOUR_CALM], `past ${LIMIT} for the caller over connections opened one after another (${JSON.stringify(goaways)})`);
});

// one identity is often many replicas: once a broken one has spent the caller's budget, a healthy
// one (its calls completed) was cut at its next cancel, and every fresh connection at its first
// for the rest of the window (a re-review); only a connection that itself resets more than it
// completes, past a tenth of the budget, is cut then
t.test("once a caller's budget is spent, only its connections that reset more than they complete are cut", async (t) => {
  const { fx, connect } = await fixture(t);
  // a healthy replica: 5 calls answered on its connection
  const healthy = await connect();
  const answered = [1, 3, 5, 7, 9];
  healthy.write(Buffer.concat(answered.map((id) => requestHeaders(id, get(`/ok/${id}`)))));
  for (let i = 0; i < 500 && answered.some((id) => !healthy.frames.some((f) => f.streamId === id && (f.flags & 1) === 1)); i++) await new Promise((r) => setTimeout(r, 10));
  // a broken replica spends the caller's budget over two connections
  const broken = [await connect(), await connect()];
  for (const [n, raw] of broken.entries()) await openAndReset(raw, PER_CONNECTION, 20 + n);
  t.same(goawaysOf(broken[1] as RawH2Connection), [ERROR.ENHANCE_YOUR_CALM], 'the broken replica is cut');
  // the healthy one cancels one call; a fresh connection cancels its first
  healthy.write(Buffer.concat([requestHeaders(11, get('/r/11')), frame(FRAME.RST_STREAM, 0, 11, CANCEL)]));
  await Promise.race([pingRoundTrip(healthy, 30).catch(() => undefined), healthy.closed]);
  const fresh = await connect();
  await openAndReset(fresh, 1, 31);
  t.same(goawaysOf(healthy), [], 'the healthy replica, 5 answered and 1 cancelled, keeps its connection');
  t.same(goawaysOf(fresh), [], 'a fresh connection cancelling one call keeps it too (no lockout for the window)');
  await openAndReset(fresh, PER_CONNECTION, 32, 3);
  t.same(goawaysOf(fresh), [ERROR.ENHANCE_YOUR_CALM], 'but one resetting on, with nothing completed, is cut');
});

t.test('a caller whose completed streams outnumber its resets keeps its connections', async (t) => {
  const { fx, connect } = await fixture(t);
  // 40 answered requests on one connection (a replica of the caller's that works)
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  const statuses = new Set<number>();
  for (let i = 0; i < 40; i++) statuses.add((await h2Request(session, { ':method': 'GET', ':path': `/ok/${i}` })).status);
  t.same([...statuses], [200], '40 requests answered');
  // three more connections (its other replicas) cancel 8 each: 24 for the caller, past LIMIT, under 40
  const others: RawH2Connection[] = [];
  for (let n = 0; n < 3; n++) {
    const raw = await connect();
    others.push(raw);
    await openAndReset(raw, PER_CONNECTION, n);
  }
  t.same(others.map(goawaysOf), [[], [], []], `${3 * PER_CONNECTION} resets against 40 completed streams: no GOAWAY`);
  t.equal(fx.inbound.connections, 4, 'every connection open');
});
