// On `http2.codec: node`, an upstream stream the outbound cuts (the upstream's timeout ran out;
// the app went away mid-request) is let go at once, not held for the idle timeout (5 min by
// default). Node 20's Http2Stream keeps its idle timer armed when destroyed before it closed
// (destroy() marks it destroyed, then its setTimeout(0) returns without clearing), and
// cancelStream() destroys it: each cut stream, its attempt, the app's request and answer stayed
// reachable from the timer (a soak of a real pair: about 40 of each more per round of traffic
// after forced GCs, the meshcar codec none). The streams are watched where every Node
// ClientHttp2Session opens them (the prototype's request(), wrapped for this file), WeakRefs,
// forced GCs; the idle timeout is the default.

import t from 'tap';
import http from 'node:http';
import http2, { type ClientHttp2Stream } from 'node:http2';
import { once } from 'node:events';
import { makePki, sleep, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';
import { allCollected } from '../helpers/collected.js';


// every stream a core ClientHttp2Session opens in this process: the outbound's (http2-wrapper's
// sessions are core sessions) and none of the test's own, which makes none
const opened: Array<WeakRef<ClientHttp2Stream>> = [];
{
  const probe = http2.connect('http://127.0.0.1:1');
  probe.on('error', () => {});
  const proto = Object.getPrototypeOf(probe) as { request: (...args: unknown[]) => ClientHttp2Stream };
  probe.destroy();
  const request = proto.request;
  proto.request = function (this: unknown, ...args: unknown[]) {
    const stream = request.apply(this, args);
    opened.push(new WeakRef(stream));
    return stream;
  };
}

t.test('cut upstream streams are collected, not held by their idle timers', async (t) => {
  const pki = await makePki('mesh.test');
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 1000 }], { codec: 'node' });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const get = (path: string, cutAfterMs?: number) =>
    new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, path, headers: { host: 'payments' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.end();
      if (cutAfterMs !== undefined) setTimeout(() => req.destroy(), cutAfterMs);
    });

  t.equal(await get('/echo'), 200, 'a whole exchange first (its stream closes by itself)');
  // the upstream's timeout (1 s: a dial on a busy machine took more than 200 ms) runs out: 504, the stream cancelled
  t.same(await Promise.all([get('/slow/3000'), get('/slow/3000')]), [504, 504]);
  // the app goes away while its request waits for the answer
  await Promise.all([get('/slow/3000', 50), get('/slow/3000', 50)]);
  t.equal(opened.length, 5, 'five upstream streams opened');
  await t.resolves(waitForStreamsClosed(), 'every stream closed');
  t.ok(await allCollected(opened), `every upstream stream let go (${opened.filter((r) => r.deref() !== undefined).length} of ${opened.length} still held)`);
});

/** Until no watched stream is open any more (bounded). */
async function waitForStreamsClosed(): Promise<void> {
  const until = Date.now() + 3000;
  for (const ref of opened) {
    const stream = ref.deref();
    if (stream !== undefined && !stream.closed) await Promise.race([once(stream, 'close'), sleep(Math.max(0, until - Date.now()))]);
  }
}
