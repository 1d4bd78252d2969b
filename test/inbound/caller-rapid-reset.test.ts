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

/** `count` streams opened and reset (CANCEL) at once on `raw`, then a PING answered or the connection closed. */
async function openAndReset(raw: RawH2Connection, count: number, tag: number): Promise<void> {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(requestHeaders(1 + 2 * i, get(`/r/${i}`)), frame(FRAME.RST_STREAM, 0, 1 + 2 * i, CANCEL));
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
