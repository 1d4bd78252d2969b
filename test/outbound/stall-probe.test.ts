// A session that reads nothing while a request on it waits for its answer is PINGed after a
// second of that silence, and destroyed if the ACK is not back within 5 s: the request is sent
// again over a new session and answered, long before its 15 s timeout (before, it waited the
// timeout out and got 504, and so did every request put on the dead session meanwhile: the
// keepalive alone needs two 60 s intervals here). A live upstream whose answer takes seconds
// ACKs and keeps its session, PINGed a few times only (each probe the same silence follows
// doubles the wait for the next). A real TCP relay between the outbound and a real upstream
// drops every byte of the frozen connection (test/helpers/freezing-relay.ts). Both codecs. And a
// PING queued behind the upstream's data on a slow path (a relay passing 150 KB/s that stalls
// once for 1.5 s) is waited for as long as that data keeps coming: the review of the first
// version saw the session destroyed 5 s after the PING and six downloads cut short.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { TD, makePki, request, startOutbound, startUpstream, defaultHandler, type H2Handler } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';

const TIMEOUT_MS = 15_000; // the default route timeout
const PING_INTERVAL_MS = 60_000; // far beyond the test: the keepalive's tick cannot be what finds it

/** An upstream (`handler`, else the default) behind a freezing relay, and an outbound on `codec` routing payments there; warn lines in `lines`. */
async function relayedPath(t: Tap.Test, codec: 'node' | 'meshcar', handler?: H2Handler) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, handler ? { handler } : {});
  const relay = await startFreezingRelay(upstream.port);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: TIMEOUT_MS }], { codec, pingIntervalMs: PING_INTERVAL_MS, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  return { upstream, relay, fx, lines };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a request waiting on a session gone silent is sent again over a new one within seconds`, async (t) => {
    const { relay, fx, lines } = await relayedPath(t, codec);
    t.equal((await request(fx.port)).status, 200, 'warm-up');
    relay.freeze(); // the pooled session's path goes silent, both ways
    const started = performance.now();
    const { status } = await request(fx.port, { headers: { 'x-request-id': 'after-freeze' } });
    const tookMs = performance.now() - started;
    t.equal(status, 200, 'the request is answered');
    // 1 s of silence, 5 s for the ACK, the retry: well under the 15 s timeout
    t.ok(tookMs > 5_500 && tookMs < 9_000, `after the probe's 1 + 5 s (${Math.round(tookMs)} ms)`);
    t.equal(relay.connections, 2, 'over one new connection');
    const dead = lines.filter((l) => String(l.msg).includes('did not answer a PING'));
    t.equal(dead.length, 1, 'one warn line for the dead session');
    t.match(String(dead[0]?.msg), /did not answer a PING within 5000 ms after 1000 ms in which nothing came while 1 stream was open on it/, 'saying why it was probed');
  });

  t.test(`${codec} codec: a live upstream answering after 6 s keeps its session, PINGed a few times`, async (t) => {
    const { upstream, relay, fx, lines } = await relayedPath(t, codec, (stream, headers, flags) => {
      if (headers[':path'] !== '/slow') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      setTimeout(() => stream.destroyed || stream.respond({ ':status': 200 }, { endStream: true }), 6_000).unref();
    });
    t.equal((await request(fx.port)).status, 200, 'warm-up');
    const pingsBefore = upstream.pings;
    t.equal((await request(fx.port, { path: '/slow' })).status, 200, 'the slow request is answered');
    const pings = upstream.pings - pingsBefore;
    // silent windows of 1, 2 and 4 s (each after an ACK) end at about 1, 3 and 7 s: two PINGs
    // within the 6 s; one every 2 s (no doubling) would be three
    t.ok(pings >= 1 && pings <= 2, `the quiet session was PINGed, and not every window (${pings} PINGs)`);
    t.equal(relay.connections, 1, 'the one session lived throughout');
    t.equal(lines.filter((l) => String(l.msg).includes('PING')).length, 0, 'nothing was declared dead');
  });
}

/** A relay passing the upstream's bytes on at `bytesPerSecond` (every 20 ms), whose hiccup(ms) holds them all that long. */
async function slowRelay(target: number, bytesPerSecond: number) {
  let heldUntil = 0;
  const queues = new Set<{ a: net.Socket; b: net.Socket; queue: Buffer[] }>();
  const pump = setInterval(() => {
    if (performance.now() < heldUntil) return;
    for (const c of queues) {
      let budget = Math.floor(bytesPerSecond / 50);
      while (budget > 0 && c.queue.length > 0) {
        const first = c.queue[0] as Buffer;
        const piece = first.subarray(0, budget);
        c.a.write(piece);
        budget -= piece.length;
        if (piece.length === first.length) c.queue.shift();
        else c.queue[0] = first.subarray(piece.length);
      }
    }
  }, 20);
  const server = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    const c = { a, b, queue: [] as Buffer[] };
    queues.add(c);
    a.on('data', (d: Buffer) => void b.write(d));
    b.on('data', (d: Buffer) => void c.queue.push(d));
    for (const s of [a, b]) {
      s.on('error', () => {});
      s.on('close', () => {
        a.destroy();
        b.destroy();
        queues.delete(c);
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    hiccup(ms: number) {
      heldUntil = performance.now() + ms;
    },
    async stop() {
      clearInterval(pump);
      for (const c of queues) c.a.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A GET of `path` on the outbound, its body counted; never rejects. */
function download(port: number, path: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'payments' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
    });
    req.on('error', () => resolve({ status: -1, bytes: 0, complete: false }));
    req.setTimeout(30_000, () => req.destroy());
  });
}

// the probe's bookkeeping is the same for both codecs: one is enough for this 9 s test
t.test('meshcar codec: a PING queued behind the upstream\'s data on a slow path is waited for while the data comes', async (t) => {
  const BODY = 400 * 1024;
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      if (headers[':path'] !== '/big') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.end(Buffer.alloc(BODY, 120));
    },
  });
  const relay = await slowRelay(upstream.port, 150 * 1024);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: TIMEOUT_MS }], { codec: 'meshcar', pingIntervalMs: PING_INTERVAL_MS, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  t.equal((await request(fx.port)).status, 200, 'warm-up');
  const pingsBefore = upstream.pings;
  const downloads = Promise.all([1, 2, 3].map(() => download(fx.port, '/big')));
  // the upstream has sent it all by now: about 1.1 MB wait on the path, 7 s at its rate
  await new Promise((r) => setTimeout(r, 600));
  relay.hiccup(1_500);
  const results = await downloads;
  t.ok(upstream.pings - pingsBefore >= 1, `the stall was probed (${upstream.pings - pingsBefore} PINGs)`);
  t.same(
    results.map((r) => [r.status, r.bytes, r.complete]),
    [1, 2, 3].map(() => [200, BODY, true]),
    'every download whole',
  );
  t.equal(lines.filter((l) => String(l.msg).includes('PING')).length, 0, 'the live session was not declared dead');
});
