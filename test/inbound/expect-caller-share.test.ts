// Requests with `Expect` (and absolute-form targets) reach an HTTP/1.1 app through node:http's
// agent (src/inbound/app-http1-node.ts), with either app client. The pools keep each caller to
// 7/8 of the app connections; the agent's one FIFO line did not: a caller keeping Expect
// uploads trickling held every socket, and another caller's Expect upload waited for one
// until its deadline (504 after 2 s, in a review). Each caller's requests through the agent are
// now held to the same share (src/inbound/app-agent-turns.ts). Real mTLS callers (a raw HTTP/2
// client trickling DATA, Node's client), both codecs, a real HTTP/1.1 app.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, FLAG, frame, FRAME, requestHeaders, type RawH2Connection } from '../helpers/raw-h2.js';
import { waitFor } from '../helpers/mesh.js';

const POOL = 8;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`one caller's trickling Expect uploads leave another caller its share (${codec})`, async (t) => {
    let uploadsAtApp = 0;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/upload') uploadsAtApp++;
      req.resume();
      req.on('end', () => res.end('done'));
    };
    const fx = await startInbound({ codec, app: { protocol: 'http', handler }, limits: { maxAppSockets: POOL }, timeoutMs: 2000 });
    t.teardown(() => fx.close());
    const upload = (path: string): Array<readonly [string, string]> => [[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'localhost'], ['expect', '100-continue']];
    const attacker = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/compromised`), { ackSettings: true });
    t.teardown(() => attacker.destroy());
    const ids = Array.from({ length: 20 }, (_, i) => 1 + 2 * i);
    for (const id of ids) attacker.write(Buffer.concat([requestHeaders(id, upload('/upload'), false), frame(FRAME.DATA, 0, id, Buffer.from('a'))]));
    // a byte each 100 ms: never idle, never done (stopped at the end, 3 s at most)
    const trickle = setInterval(() => {
      for (const id of ids) attacker.write(frame(FRAME.DATA, 0, id, Buffer.from('a')));
    }, 100);
    const stop = setTimeout(() => clearInterval(trickle), 3_000);
    t.teardown(() => {
      clearInterval(trickle);
      clearTimeout(stop);
    });
    await waitFor(async () => uploadsAtApp >= POOL - 1, 5_000, "the attacker's uploads reaching the app");
    const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
    t.teardown(() => other.destroy());
    const started = performance.now();
    const answer = await h2Request(other, { ':method': 'POST', ':path': '/other', expect: '100-continue' }, 'hello');
    t.equal(answer.status, 200, `another caller's Expect upload is answered (${answer.headers['x-meshcar-error'] ?? 'ok'}, ${Math.round(performance.now() - started)} ms)`);
    t.equal(uploadsAtApp, POOL - 1, `the attacker holds ${POOL - 1} of ${POOL} (7/8), the rest of its uploads wait their turn`);
  });
}

// Two busy callers within their shares together passed the agent's sockets (7 + 7 > 8): the
// rest went to the agent's own FIFO line, the bound filled there, and a third caller holding
// nothing got 503 overloaded in place of the flooders (a review: 13 ms). A request now goes to
// the agent only while a socket is free; the rest wait their turn, where the bound evicts the
// newest of the caller with the most waiting.
t.test('two busy callers leave a newcomer its turn: the bound evicts the flooder, not the newcomer', async (t) => {
  let atApp = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    atApp++;
    req.resume();
    req.on('end', () => res.end('done'));
  };
  const fx = await startInbound({ app: { protocol: 'http', handler }, limits: { maxAppSockets: POOL, appMaxWaiting: 5 }, timeoutMs: 5_000 });
  t.teardown(() => fx.close());
  const upload: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost'], ['expect', '100-continue']];
  const trickling: Array<{ conn: RawH2Connection; ids: number[]; timer: NodeJS.Timeout }> = [];
  const flood = async (name: string, count: number) => {
    const conn = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/${name}`), { ackSettings: true });
    const ids = Array.from({ length: count }, (_, i) => 1 + 2 * i);
    for (const id of ids) conn.write(Buffer.concat([requestHeaders(id, upload, false), frame(FRAME.DATA, 0, id, Buffer.from('a'))]));
    // a byte each 100 ms: never idle, never done (until ended below; 6 s at most)
    const timer = setInterval(() => {
      for (const id of ids) conn.write(frame(FRAME.DATA, 0, id, Buffer.from('a')));
    }, 100);
    setTimeout(() => clearInterval(timer), 6_000).unref();
    trickling.push({ conn, ids, timer });
    t.teardown(() => {
      clearInterval(timer);
      conn.destroy();
    });
  };
  await flood('noisy', 7);
  await waitFor(async () => atApp === 7, 5_000, "noisy's seven uploads at the app");
  // one more to the app (the eighth socket), five waiting (the bound), one refused
  await flood('front', 7);
  await waitFor(async () => atApp === 8 && fx.inbound.inFlight === 13, 5_000, "front's upload at the app and five waiting");
  const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => other.destroy());
  const answer = h2Request(other, { ':method': 'POST', ':path': '/other', expect: '100-continue' }, 'hello');
  // the newcomer waits its turn (front's newest evicted for it); noisy's uploads end and free five sockets and more
  await waitFor(async () => fx.observer.requests.filter((r) => r.errorCode === 'overloaded').length === 2, 5_000, "front's two newest refused");
  const noisy = trickling[0]!;
  clearInterval(noisy.timer);
  for (const id of noisy.ids) noisy.conn.write(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('z')));
  const { status, headers } = await answer;
  t.equal(status, 200, `the newcomer's Expect upload is answered (${headers['x-meshcar-error'] ?? 'ok'})`);
  t.same(
    fx.observer.requests.filter((r) => r.errorCode === 'overloaded').map((r) => r.peer),
    ['front', 'front'],
    'the refused are the flooder\'s',
  );
});

// those waiting their turn are refused on a drain out of time as the pool's waiting are
// (REFUSED_STREAM, recorded upstream_unavailable: never processed, safe to send again); they
// were cut with the session instead (INTERNAL_ERROR or CANCEL, recorded 503 drain_timeout)
for (const codec of ['meshcar', 'node'] as const) {
  t.test(`Expect requests waiting their turn are refused on a drain out of time (${codec})`, async (t) => {
    const seen: string[] = [];
    const fx = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          seen.push(req.url ?? '');
          req.resume();
          setTimeout(() => res.end('late'), 10_000).unref();
        },
      },
      limits: { maxAppSockets: 1 },
    });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    const outcome = (path: string) =>
      new Promise<string>((resolve) => {
        const stream = session.request({ ':method': 'POST', ':path': path, expect: '100-continue' }, { endStream: true });
        let status = 0;
        stream.on('response', (head) => (status = Number(head[':status'])));
        stream.on('error', () => undefined);
        stream.resume();
        stream.on('close', () => resolve(status !== 0 ? `status ${status}` : `reset ${stream.rstCode}`));
      });
    const sent = outcome('/sent');
    await waitFor(async () => seen.length === 1, 5_000, 'the first request at the app');
    const waiting = [outcome('/waiting-1'), outcome('/waiting-2')];
    await waitFor(async () => fx.inbound.inFlight === 3, 5_000, 'two waiting their turn');
    await fx.inbound.drain(300);
    t.same(await Promise.all(waiting), ['reset 7', 'reset 7'], 'both refused: REFUSED_STREAM');
    await sent;
    await fx.observer.waitForRequests(3);
    t.same(fx.observer.requests.filter((r) => r.path?.startsWith('/waiting')).map((r) => r.errorCode), ['upstream_unavailable', 'upstream_unavailable'], 'recorded as never processed');
    t.same(seen, ['/sent'], 'the app saw only the first');
  });
}
