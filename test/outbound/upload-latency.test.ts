// An endpoint's latency, as the balancer weighs it, counts from the end of the request: while an
// app's upload is still coming the time is the app's. Counted from the stream's opening, a
// healthy endpoint's answer to a 500 ms upload weighed 500 ms, more than the 250 ms penalty of
// an endpoint failing every request at once, and the failing one drew the calls (the gRPC
// review: 7 of 8 idempotent PUTs went to it first, 11 of 12 client-stream calls failed).

import t, { type Test } from 'tap';
import http from 'node:http';
import { defaultHandler, makePki, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

const always503: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 503 }, { endStream: true });
};

/**
 * A PUT through the outbound; its status. `body`: five parts 100 ms apart (an app's slow upload),
 * after the 100 Continue with `expect`; or one buffer written at once.
 */
function put(port: number, body: { paced: true; expect?: boolean } | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const paced = !Buffer.isBuffer(body);
    const headers = { host: 'payments', ...(paced ? (body.expect ? { expect: '100-continue' } : {}) : { 'content-length': body.length }) };
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/echo', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (!paced) return void req.end(body);
    let parts = 0;
    const next = () => {
      req.write('part ');
      if (++parts === 5) req.end();
      else setTimeout(next, 100);
    };
    if (body.expect) req.once('continue', next);
    else next();
  });
}

/** An outbound balancing over two upstreams with these handlers, ejection off (the weighing alone decides); all closed at teardown. */
async function twoEndpoints(t: Test, first: H2Handler, second: H2Handler) {
  const pki = await makePki(TD);
  const a = await startUpstream(pki, { handler: first });
  const b = await startUpstream(pki, { handler: second });
  const fx = await startBalanced(pki, { ports: [a.port, b.port], outlierDetection: { consecutiveFailures: 0, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 } });
  t.teardown(async () => {
    await fx.close();
    await a.close();
    await b.close();
  });
  return { a, b, port: fx.port };
}

t.test('slow uploads do not make a healthy endpoint look slower than one failing every request', async (t) => {
  const { a: failing, port } = await twoEndpoints(t, always503, defaultHandler);
  const calls = 8;
  for (let i = 0; i < calls; i++) t.equal(await put(port, { paced: true }), 200, `PUT ${i + 1}: 200 (retried if it met the failing endpoint)`);
  t.ok(failing.requests <= 2, `the failing endpoint saw ${failing.requests} of ${calls} uploads (7 of 8 when an upload's time was the endpoint's)`);
});

/** Reads nothing for 400 ms (its flow-control window shuts on a large upload), then answers at once. */
const holdsUploads: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.pause();
  setTimeout(() => {
    stream.resume();
    stream.on('end', () => stream.respond({ ':status': 200 }, { endStream: true }));
  }, 400);
};

/** Reads at once, answers 80 ms after the upload's end. */
const answersIn80ms: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => setTimeout(() => stream.respond({ ':status': 200 }, { endStream: true }), 80));
};

t.test('an endpoint that holds uploads back is not made to look fast by it', async (t) => {
  // counted from the end of the upload alone, the one holding it back answered "at once"
  const { a: holding, port } = await twoEndpoints(t, holdsUploads, answersIn80ms);
  const calls = 12;
  for (let i = 0; i < calls; i++) t.equal(await put(port, Buffer.alloc(2 << 20, 'x')), 200, `PUT ${i + 1}: 200`);
  t.ok(holding.requests <= 3, `the endpoint holding uploads back got ${holding.requests} of ${calls} (11 of 12 when only the time after the upload counted)`);
});

/** Sends its 100 Continue at once when asked for one, then reads and answers as the default does. */
const continuesAtOnce: H2Handler = (stream, headers, flags) => {
  if (headers.expect === '100-continue') stream.additionalHeaders({ ':status': 100 });
  defaultHandler(stream, headers, flags);
};

t.test('with Expect: 100-continue, the wait for the 100 is the endpoint\'s, the slow upload after it the app\'s', async (t) => {
  // counted whole, the healthy endpoint's exchange (500 ms of upload) outweighed the failing one's penalty: 9 of 10 went there
  const { a: failing, port } = await twoEndpoints(t, always503, continuesAtOnce);
  const calls = 8;
  let served = 0;
  for (let i = 0; i < calls; i++) if ((await put(port, { paced: true, expect: true })) === 200) served++;
  t.ok(failing.requests <= 2, `the failing endpoint saw ${failing.requests} of ${calls} (it answers 503 before any 100: not retried)`);
  t.ok(served >= calls - 2, `${served} of ${calls} served`);
});
