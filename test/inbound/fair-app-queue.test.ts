// Requests that wait for the app are served caller by caller in turn (src/http/fair-queue.ts),
// not in arrival order: a caller that queues ten requests while the app is busy does not put
// another caller's one request behind all ten. Through a real inbound (mTLS, two caller
// identities from the test CA), toward an HTTP/1.1 app held to one connection (the own pool's
// queue, inbound/app-pool.ts) and an h2c app allowing one stream (the h2c pool's bounded queue,
// inbound/h2c-waiters.ts). Both queues are bounded (inbound.limits.maxAppWaiting): a full one
// gives up the flooding caller's newest request, not the newcomer's, and a request its caller
// cancels leaves it at once; node:http's agent (Expect requests) is bounded too. The apps hold
// every request until the test answers it.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { h2Connect, h2Request, startInbound, TD, type H2Response } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import type { InboundLimits } from '../../src/inbound/index.js';

const BATCH_ID = `spiffe://${TD}/svc/batch`;

/** Answers held at the app, in arrival order, and the paths in the order they arrived. */
interface HeldApp {
  readonly port: number;
  readonly arrived: string[];
  /** Answers the oldest held request. */
  answerOne(): void;
  readonly heldCount: () => number;
  close(): Promise<void>;
}

/**
 * An app, HTTP/1.1 or h2c (allowing one stream per connection), that holds every request until
 * answerOne(); close() answers what it holds and cuts the connections.
 */
async function holdingApp(protocol: 'http' | 'h2c'): Promise<HeldApp> {
  const held: Array<() => void> = [];
  const arrived: string[] = [];
  const hold = (req: { url?: string }, res: { end(text: string): unknown }) => {
    arrived.push(req.url as string);
    held.push(() => res.end(req.url as string));
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  let cutConnections: () => void;
  let server: http.Server | http2.Http2Server;
  if (protocol === 'http') {
    const h1 = http.createServer(hold);
    cutConnections = () => h1.closeAllConnections();
    server = h1;
  } else {
    const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1 } }, hold);
    h2.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    cutConnections = () => sessions.forEach((s) => s.destroy());
    server = h2;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arrived,
    answerOne: () => held.shift()?.(),
    heldCount: () => held.length,
    close: () => {
      for (const answer of held.splice(0)) answer();
      cutConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** An inbound in front of `app` and an HTTP/2 connection from each of two callers (frontend and batch), all closed when the test ends. */
async function twoCallers(t: Tap.Test, app: HeldApp, protocol: 'http' | 'h2c', limits: InboundLimits) {
  const fx = await startInbound({ externalApp: { protocol, port: app.port }, limits, timeoutMs: 20_000 });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const frontend = await h2Connect(fx.port, await fx.tlsOptions());
  const batch = await h2Connect(fx.port, await fx.tlsOptions(BATCH_ID));
  t.teardown(() => {
    frontend.destroy();
    batch.destroy();
  });
  return { frontend, batch };
}

/** Answers the held requests one at a time until `want` have arrived (bounded). */
async function serveUntil(app: HeldApp, want: number): Promise<void> {
  for (let i = 0; i < want + 5 && app.arrived.length < want; i++) {
    await waitFor(async () => app.heldCount() > 0, 5000, 'a request held at the app');
    const before = app.arrived.length;
    app.answerOne();
    await waitFor(async () => app.arrived.length > before || app.arrived.length >= want, 5000, `request ${before + 1} at the app`);
  }
  // the last to arrive is answered too
  while (app.heldCount() > 0) app.answerOne();
}

t.test('HTTP/1.1 app, one connection: the second caller is served after one more of the first caller\'s ten, not after all of them', async (t) => {
  const app = await holdingApp('http');
  const { frontend, batch } = await twoCallers(t, app, 'http', { maxAppSockets: 1 });
  const answers: Array<Promise<H2Response>> = [];
  for (let i = 0; i < 10; i++) answers.push(h2Request(frontend, { ':path': `/frontend/${i}` }));
  await waitFor(async () => app.arrived.length === 1, 5000, 'the first request at the app');
  // the other nine wait in the pool's queue before the second caller asks: the inbound reads
  // a connection's frames in order, so once a PING sent after the ten is answered, all ten
  // HEADERS have been taken in
  await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
  answers.push(h2Request(batch, { ':path': '/batch/0' }));
  await new Promise<void>((resolve, reject) => batch.ping((err) => (err ? reject(err) : resolve())));
  await serveUntil(app, 11);
  const at = app.arrived.indexOf('/batch/0');
  t.ok(at >= 1 && at <= 2, `the second caller's request arrived at position ${at + 1} of 11 (${app.arrived.join(' ')})`);
  for (const answer of await Promise.all(answers)) t.equal(answer.status, 200);
});

for (const protocol of ['h2c', 'http'] as const) {
  const held = protocol === 'h2c' ? 'h2c app allowing one stream' : 'HTTP/1.1 app held to one connection';
  // the HTTP/1.1 queue had no bound: every request a caller sent past its share held its head
  // and exchange there until the idle timeout (~18 KB each for a few bytes of HPACK: a review)
  const limits: InboundLimits = protocol === 'h2c' ? { appMaxWaiting: 4 } : { maxAppSockets: 1, appMaxWaiting: 4 };

  t.test(`${held}, queue of 4: the flooding caller loses its newest waiting request to a newcomer, who is served next but one`, async (t) => {
    const app = await holdingApp(protocol);
    const { frontend, batch } = await twoCallers(t, app, protocol, limits);
    // one at the app, four waiting, the sixth refused at once
    const flood: Array<Promise<H2Response>> = [];
    for (let i = 0; i < 6; i++) flood.push(h2Request(frontend, { ':path': `/frontend/${i}` }));
    await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
    const sixth = await flood[5];
    t.equal(sixth?.status, 503, 'the sixth of the flood: the queue is full');
    t.equal(sixth?.headers['x-meshcar-error'], 'overloaded');
    await waitFor(async () => app.arrived.length === 1, 5000, 'the first request at the app');
    // the newcomer takes the place of the flood's newest waiting request (/frontend/4)
    const newcomer = h2Request(batch, { ':path': '/batch/0' });
    await new Promise<void>((resolve, reject) => batch.ping((err) => (err ? reject(err) : resolve())));
    const crowdedOut = await flood[4];
    t.equal(crowdedOut?.status, 503, "the flooding caller's newest waiting request gives its place up");
    t.equal(crowdedOut?.headers['x-meshcar-error'], 'overloaded');
    await serveUntil(app, 5);
    t.same(app.arrived, ['/frontend/0', '/frontend/1', '/batch/0', '/frontend/2', '/frontend/3'], 'callers in turn');
    t.equal((await newcomer).status, 200);
    for (const i of [0, 1, 2, 3]) t.equal((await flood[i])?.status, 200, `/frontend/${i}`);
  });

  t.test(`${held}, queue of 4: a waiting request its caller cancels leaves its place at once`, async (t) => {
    const app = await holdingApp(protocol);
    const { frontend } = await twoCallers(t, app, protocol, limits);
    const answers: Array<Promise<H2Response>> = [];
    for (let i = 0; i < 4; i++) answers.push(h2Request(frontend, { ':path': `/frontend/${i}` }));
    // the fifth waits, then its caller gives up on it
    // bodiless: dispatched at once (a request whose body has not begun is held for its first byte)
    const cancelled = frontend.request({ ':path': '/frontend/cancelled' }, { endStream: true });
    cancelled.on('error', () => {});
    await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
    await waitFor(async () => app.arrived.length === 1, 5000, 'the first request at the app');
    cancelled.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
    // its place is free: the next one waits instead of being refused (the own pool kept a
    // cancelled request queued until a connection came to find it cancelled)
    answers.push(h2Request(frontend, { ':path': '/frontend/4' }));
    await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
    await serveUntil(app, 5);
    t.same(app.arrived, ['/frontend/0', '/frontend/1', '/frontend/2', '/frontend/3', '/frontend/4'], 'the cancelled one never reached the app, the one after it did');
    for (const answer of await Promise.all(answers)) t.equal(answer.status, 200);
  });
}

t.test('HTTP/1.1 app: requests with Expect wait in a bounded queue too', async (t) => {
  // they go through node:http's agent (its queue has no bound of its own)
  const app = await holdingApp('http');
  const { frontend } = await twoCallers(t, app, 'http', { maxAppSockets: 1, appMaxWaiting: 2 });
  const answers: Array<Promise<H2Response>> = [];
  for (let i = 0; i < 4; i++) answers.push(h2Request(frontend, { ':path': `/expect/${i}`, ':method': 'POST', expect: '100-continue' }, 'body'));
  const fourth = await answers[3];
  t.equal(fourth?.status, 503, 'the fourth: one at the app, two waiting, the queue full');
  t.equal(fourth?.headers['x-meshcar-error'], 'overloaded');
  await serveUntil(app, 3);
  t.same(app.arrived, ['/expect/0', '/expect/1', '/expect/2'], 'the others served in order');
  for (const i of [0, 1, 2]) t.equal((await answers[i])?.status, 200, `/expect/${i}`);
});

t.test('HTTP/1.1 app: Expect requests their callers gave up on keep no place in that queue', async (t) => {
  // node:http's agent keeps a cancelled request listed until a socket comes for it: counted, it
  // kept a live caller's request out (503) with nothing live waiting (the review of the bound)
  const app = await holdingApp('http');
  const { frontend } = await twoCallers(t, app, 'http', { maxAppSockets: 1, appMaxWaiting: 2 });
  const expect = (path: string) => ({ ':path': path, ':method': 'POST', expect: '100-continue' });
  const first = h2Request(frontend, expect('/expect/0'), 'body');
  await waitFor(async () => app.arrived.length === 1, 5000, 'the first request at the app');
  const givenUp = ['/expect/1', '/expect/2'].map((path) => {
    const stream = frontend.request(expect(path));
    stream.on('error', () => {});
    stream.end('body');
    return stream;
  });
  await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
  for (const stream of givenUp) stream.close(http2.constants.NGHTTP2_CANCEL);
  await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
  const live = h2Request(frontend, expect('/expect/3'), 'body');
  await new Promise<void>((resolve, reject) => frontend.ping((err) => (err ? reject(err) : resolve())));
  await serveUntil(app, 2);
  t.equal((await live).status, 200, 'the live request waited for its turn and was served');
  t.equal((await first).status, 200);
  t.same(app.arrived, ['/expect/0', '/expect/3'], 'the given-up ones never reached the app');
});
