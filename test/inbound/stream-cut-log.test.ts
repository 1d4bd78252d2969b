// An answer the inbound's idle timeout cuts after its head (an SSE stream that stays quiet past
// idleTimeout) is recorded with the reason upstream_timeout, not 'reset' (a caller that left),
// and one warn line per idle-timeout key says so and names the key to raise; a caller that
// leaves is still 'reset', with no line. Both HTTP/2 codecs, HTTP/1.1 and HTTP/2 callers.

import t from 'tap';
import http2 from 'node:http2';
import { Writable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { h1Stream, h2Connect, h2Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import type { RequestRecord } from '../../src/metrics/traffic.js';

interface Line {
  level: number;
  msg: string;
  path?: string;
  idleTimeoutMs?: number;
}

/** A logger whose JSON lines land in `lines`. */
function recordingLogger(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** An SSE app: the head and a first comment at once, then nothing (the events are far apart). */
function sseApp(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': connected\n\n');
}

/** Waits (bounded) until `done()` holds. */
async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The record of the request to `path`, once reported. */
async function recordOf(fx: InboundFixture, path: string): Promise<RequestRecord> {
  await until(() => fx.observer.requests.some((r) => r.path === path), `the record of ${path}`);
  return fx.observer.requests.find((r) => r.path === path) as RequestRecord;
}

function cutLines(lines: Line[]): Line[] {
  return lines.filter((l) => l.level === 40 && l.msg.startsWith('stream cut after its response head'));
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a quiet stream cut at the idle timeout is upstream_timeout, with one warn line per key`, async (t) => {
    const { logger, lines } = recordingLogger();
    const fx = await startInbound({ app: { protocol: 'http', handler: sseApp }, codec, logger });
    t.teardown(() => fx.close());
    // a key each: the lines are rate-limited per key (and per inbound)
    const h1Route = '/h1/*';
    const h2Route = '/h2/*';
    fx.inbound.setTimeouts({ timeoutMs: 5000, routes: [{ path: h1Route, idleTimeoutMs: 300 }, { path: h2Route, idleTimeoutMs: 250 }] });
    const tlsOptions = await fx.tlsOptions();

    // HTTP/1.1: the head and a comment, then the connection is cut
    const h1Path = '/h1/events';
    const h1 = await h1Stream(fx.port, tlsOptions, h1Path);
    t.equal(h1.status, 200, 'HTTP/1.1: the head went out');
    t.equal(h1.body, ': connected\n\n', 'and the first bytes');
    t.ok(h1.aborted, 'then the stream was broken off');
    const h1Record = await recordOf(fx, h1Path);
    t.equal(h1Record.errorCode, 'upstream_timeout', "HTTP/1.1: recorded as the idle timeout's cut, not 'reset'");
    t.equal(h1Record.status, 200, "with the head's status");
    await until(() => cutLines(lines).some((l) => l.path === h1Path), 'the HTTP/1.1 warn line');
    const h1Line = cutLines(lines).find((l) => l.path === h1Path) as Line;
    t.equal(
      h1Line.msg,
      `stream cut after its response head: no bytes moved either way for 300 ms (inbound.routes[0].idleTimeout (${h1Route})); the caller sees a reset (its sidecar counts upstream_reset): raise that key for streams that stay quiet longer, or have the app send something sooner`,
      "the line names the route's key",
    );
    t.equal(h1Line.idleTimeoutMs, 300);

    // HTTP/2: the stream is reset
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.destroy());
    const first = '/h2/first';
    const h2 = await h2Request(session, { ':method': 'GET', ':path': first });
    t.equal(h2.status, 200, 'HTTP/2: the head went out');
    t.ok((h2.rstCode ?? 0) > 0, `then the stream was reset (code ${h2.rstCode})`);
    t.equal((await recordOf(fx, first)).errorCode, 'upstream_timeout', "HTTP/2: recorded as the idle timeout's cut, not 'reset'");
    await until(() => cutLines(lines).some((l) => l.path === first), 'the HTTP/2 warn line');
    t.match(cutLines(lines).find((l) => l.path === first)?.msg, `no bytes moved either way for 250 ms (inbound.routes[1].idleTimeout (${h2Route}))`);

    // a second cut on the same key within the window: recorded the same, no second line
    const second = '/h2/second';
    await h2Request(session, { ':method': 'GET', ':path': second });
    t.equal((await recordOf(fx, second)).errorCode, 'upstream_timeout', 'the second cut is recorded the same');

    // a caller that leaves mid-stream is still a reset, and no line of this kind
    const left = '/h2/left';
    const stream = session.request({ ':method': 'GET', ':path': left });
    stream.on('error', () => {});
    stream.on('data', () => stream.close(http2.constants.NGHTTP2_CANCEL));
    t.equal((await recordOf(fx, left)).errorCode, 'reset', "a caller that left: 'reset'");
    t.equal(cutLines(lines).length, 2, 'one line per key: the second cut on the HTTP/2 route was not logged');
  });
}

t.test("the inbound's own idleTimeout: the line names it, and the routes that may override it", async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({ app: { protocol: 'http', handler: sseApp }, idleTimeoutMs: 300, logger });
  t.teardown(() => fx.close());
  const res = await h1Stream(fx.port, await fx.tlsOptions(), '/events');
  t.equal(res.status, 200);
  t.ok(res.aborted, 'the stream was broken off');
  t.equal((await recordOf(fx, '/events')).errorCode, 'upstream_timeout');
  await until(() => cutLines(lines).length > 0, 'the warn line');
  t.match(cutLines(lines)[0]?.msg, "no bytes moved either way for 300 ms (inbound.idleTimeout, or the path's idleTimeout in inbound.routes)");
});

t.test('an h2c app whose stream goes quiet after its head: the same record, and the app session still serves', async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({
    app: {
      protocol: 'h2c',
      handler: (stream, headers) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
        if (headers[':path'] === '/quiet') stream.write(': connected\n\n');
        else stream.end('ok');
      },
    },
    idleTimeoutMs: 300,
    logger,
  });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.destroy());
  const cut = await h2Request(session, { ':method': 'GET', ':path': '/quiet' });
  t.equal(cut.status, 200);
  t.ok((cut.rstCode ?? 0) > 0, `the stream was reset (code ${cut.rstCode})`);
  t.equal((await recordOf(fx, '/quiet')).errorCode, 'upstream_timeout');
  await until(() => cutLines(lines).length > 0, 'the warn line');
  // the cut asks the app's session for a PING (a quiet stream may be a dead session): a live one answers and serves on
  const next = await h2Request(session, { ':method': 'GET', ':path': '/next' });
  t.equal(next.status, 200, 'the next request is served');
  t.equal(next.body.toString(), 'ok');
});
