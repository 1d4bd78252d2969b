// A probe's PING may queue behind the upstream's data on a slow path, and is then waited for as
// long as that data keeps coming: a session that is slow, not dead, keeps its downloads. Two
// ways to a probe there: the path stalls once for 2.5 s while three downloads wait (the silence
// watch), and a request on the session times out on its app's own 1 s deadline while the
// downloads flow (the timeout's probe). Reviews saw each destroy the live session 5 s after
// the PING, with its ACK still behind 0.5-2.3 MB, and cut the downloads short (the first with a
// relay at 150-200 KB/s, the second at 80 KB/s). A relay between the outbound and a real
// upstream passes the upstream's bytes on at a fixed rate.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { TD, makePki, request, startOutbound, startUpstream, defaultHandler } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';

const PING_INTERVAL_MS = 60_000; // the probes' own windows are what is tested

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

// the probe's bookkeeping is the same for both codecs: one is enough for these ~10 s tests
const cases = [
  // 1.1 MB wait on the path at 150 KB/s (7 s) once the hiccup is over
  { by: 'silence', bytesPerSecond: 150 * 1024, body: 400 * 1024 },
  // 0.7 MB at 80 KB/s (9 s): the timed-out request's PING goes out at about 1.6 s
  { by: 'timeout', bytesPerSecond: 80 * 1024, body: 240 * 1024 },
] as const;

for (const { by, bytesPerSecond, body: BODY } of cases) t.test(`meshcar codec: a ${by} probe's PING queued behind the upstream's data is waited for while the data comes`, async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/never') return; // taken, never answered
      if (headers[':path'] !== '/big') return defaultHandler(stream, headers, flags);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.end(Buffer.alloc(BODY, 120));
    },
  });
  const relay = await slowRelay(upstream.port, bytesPerSecond);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 30_000 }], { codec: 'meshcar', pingIntervalMs: PING_INTERVAL_MS, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  t.equal((await request(fx.port)).status, 200, 'warm-up');
  const pingsBefore = upstream.pings;
  const downloads = Promise.all([1, 2, 3].map(() => download(fx.port, '/big')));
  // the upstream has sent it all by now; it waits on the path
  await new Promise((r) => setTimeout(r, 600));
  if (by === 'silence') relay.hiccup(2_500);
  else t.equal((await request(fx.port, { path: '/never', headers: { 'x-request-timeout': '1' } })).status, 504, "a request on the session passes its app's own deadline");
  const results = await downloads;
  t.ok(upstream.pings - pingsBefore >= 1, `the session was probed (${upstream.pings - pingsBefore} PINGs)`);
  t.same(
    results.map((r) => [r.status, r.bytes, r.complete]),
    [1, 2, 3].map(() => [200, BODY, true]),
    'every download whole',
  );
  t.equal(lines.filter((l) => String(l.msg).includes('PING')).length, 0, 'the live session was not declared dead');
});
