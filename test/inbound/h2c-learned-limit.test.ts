// What the inbound's h2c pool learns from an app's refusals, and for how long. A refusal made
// while no other stream was open on the session taught "one stream" (max(1, 0)), copied to
// every session and to every new one, and blocked opening more: one REFUSED_STREAM (an app
// shedding one request under a passing overload) held the sidecar to one stream per session for
// its life, and concurrent requests beyond it waited into 504s. Now such a refusal teaches
// nothing (no limit is 0), and a limit learned from refusals with other streams open is lifted
// after a while (appLearnedLimitMs; 60 s by default), the announced limit tried again. A real
// inbound (in-process) over mTLS, a Node h2c app counting what it holds at once.

import t, { type Test } from 'tap';
import http2 from 'node:http2';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import type { InboundLimits } from '../../src/inbound/index.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/**
 * An h2c app announcing no stream limit. `/refuse`: refused on its first try (x-id). `/hold`:
 * held until `release` of them are held at once, then all answered. `refuseOver`: while the
 * app's held streams number `refuseOver`, a new one is refused (change() sets both anew).
 */
function app(release: number, refuseOver = Infinity) {
  const limits = { release, refuseOver };
  const stats = { refused: 0, held: 0, peakHeld: 0 };
  const tried = new Set<string>();
  const held: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer();
  let inFlight = 0;
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const path = String(headers[':path']);
    const id = String(headers['x-id']);
    if ((path === '/refuse' && !tried.has(id)) || inFlight >= limits.refuseOver) {
      tried.add(id);
      stats.refused++;
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (path !== '/hold') {
      stream.respond({ ':status': 200 });
      stream.end('ok');
      return;
    }
    inFlight++;
    held.push(stream);
    stats.peakHeld = Math.max(stats.peakHeld, held.length);
    stream.once('close', () => inFlight--);
    if (held.length < limits.release) return;
    for (const s of held.splice(0)) {
      s.respond({ ':status': 200 });
      s.end('released');
    }
  });
  return { server, stats, change: (next: typeof limits) => Object.assign(limits, next) };
}

async function inboundBefore(t: Test, server: http2.Http2Server, limits: InboundLimits = {}) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const fx = await startInbound({ timeoutMs: 3000, limits, externalApp: { protocol: 'h2c', port: (server.address() as { port: number }).port } });
  t.teardown(() => fx.close());
  const caller = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => caller.destroy());
  return { fx, caller };
}

const sixHeld = (caller: http2.ClientHttp2Session, tag: string) =>
  Promise.all(Array.from({ length: 6 }, (_, i) => h2Request(caller, { ':method': 'GET', ':path': '/hold', 'x-id': `${tag}${i}` })));

t.test('a refusal with no other stream open teaches no limit: six requests still reach the app at once', async (t) => {
  const { server, stats } = app(6);
  const { caller } = await inboundBefore(t, server);
  t.equal((await h2Request(caller, { ':method': 'GET', ':path': '/ok' })).status, 200, 'warm: the session is open and its SETTINGS known');
  const refusedOnce = await h2Request(caller, { ':method': 'GET', ':path': '/refuse', 'x-id': 'r1' });
  t.equal(refusedOnce.status, 200, 'the refused request was sent again and answered');
  t.equal(stats.refused, 1);
  const answers = await sixHeld(caller, 'a');
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200], `all six answered (the app held ${stats.peakHeld} at once)`);
});

t.test('a limit learned from refusals with other streams open is lifted after appLearnedLimitMs', async (t) => {
  // refusing beyond 2 in flight: the pool learns 2 (a PING confirms the session lives)
  const { server, stats, change } = app(2, 2);
  const { caller } = await inboundBefore(t, server, { appLearnedLimitMs: 500 });
  t.equal((await h2Request(caller, { ':method': 'GET', ':path': '/ok' })).status, 200, 'warm');
  const first = await Promise.all(Array.from({ length: 4 }, (_, i) => h2Request(caller, { ':method': 'GET', ':path': '/hold', 'x-id': `b${i}` })));
  t.same(first.map((a) => a.status), [200, 200, 200, 200], 'answered within the limit the app enforced, the refused ones sent again');
  t.ok(stats.refused > 0, `the app refused beyond 2 (${stats.refused})`);
  // its overload passed: it takes six at once now, and answers them once six are held
  change({ release: 6, refuseOver: Infinity });
  const learnedBy = performance.now();
  await new Promise<void>((resolve) => {
    const poll = () => (performance.now() - learnedBy > 800 ? resolve() : setTimeout(poll, 50));
    poll();
  });
  const answers = await sixHeld(caller, 'c');
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200], `past appLearnedLimitMs all six reach the app at once (it held ${stats.peakHeld})`);
});
