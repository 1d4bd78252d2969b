// An endpoint's latency, as the balancer weighs it, counts from the end of the request: while an
// app's upload is still coming the time is the app's. Counted from the stream's opening, a
// healthy endpoint's answer to a 500 ms upload weighed 500 ms, more than the 250 ms penalty of
// an endpoint failing every request at once, and the failing one drew the calls (the gRPC
// review: 7 of 8 idempotent PUTs went to it first, 11 of 12 client-stream calls failed).

import t from 'tap';
import http from 'node:http';
import { defaultHandler, makePki, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

const always503: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 503 }, { endStream: true });
};

/** A PUT whose body comes in five parts 100 ms apart; its status. */
function slowPut(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/echo', headers: { host: 'payments' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    let parts = 0;
    const next = () => {
      req.write('part ');
      if (++parts === 5) req.end();
      else setTimeout(next, 100);
    };
    next();
  });
}

/** The same PUT with Expect: 100-continue: its parts go once the 100 has come. */
function slowPutAfterContinue(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/echo', headers: { host: 'payments', expect: '100-continue' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    let parts = 0;
    const next = () => {
      req.write('part ');
      if (++parts === 5) req.end();
      else setTimeout(next, 100);
    };
    req.once('continue', next);
  });
}

t.test('slow uploads do not make a healthy endpoint look slower than one failing every request', async (t) => {
  const pki = await makePki(TD);
  const failing = await startUpstream(pki, { handler: always503 });
  const healthy = await startUpstream(pki);
  // ejection off: the balancer's weighing alone decides
  const fx = await startBalanced(pki, { ports: [failing.port, healthy.port], outlierDetection: { consecutiveFailures: 0, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 } });
  t.teardown(async () => {
    await fx.close();
    await failing.close();
    await healthy.close();
  });
  const calls = 8;
  for (let i = 0; i < calls; i++) t.equal(await slowPut(fx.port), 200, `PUT ${i + 1}: 200 (retried if it met the failing endpoint)`);
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

/** A 2 MB PUT written at once by the app; its status. */
function bigPut(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/big', headers: { host: 'payments', 'content-length': 2 << 20 }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(Buffer.alloc(2 << 20, 'x'));
  });
}

t.test('an endpoint that holds uploads back is not made to look fast by it', async (t) => {
  // counted from the end of the upload alone, the one holding it back answered "at once"
  const pki = await makePki(TD);
  const holding = await startUpstream(pki, { handler: holdsUploads });
  const reading = await startUpstream(pki, { handler: answersIn80ms });
  const fx = await startBalanced(pki, { ports: [holding.port, reading.port], outlierDetection: { consecutiveFailures: 0, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 } });
  t.teardown(async () => {
    await fx.close();
    await holding.close();
    await reading.close();
  });
  const calls = 12;
  for (let i = 0; i < calls; i++) t.equal(await bigPut(fx.port), 200, `PUT ${i + 1}: 200`);
  t.ok(holding.requests <= 3, `the endpoint holding uploads back got ${holding.requests} of ${calls} (11 of 12 when only the time after the upload counted)`);
});

/** Sends its 100 Continue at once when asked for one, then reads and answers as the default does. */
const continuesAtOnce: H2Handler = (stream, headers, flags) => {
  if (headers.expect === '100-continue') stream.additionalHeaders({ ':status': 100 });
  defaultHandler(stream, headers, flags);
};

t.test('with Expect: 100-continue, the wait for the 100 is the endpoint\'s, the slow upload after it the app\'s', async (t) => {
  // counted whole, the healthy endpoint's exchange (500 ms of upload) outweighed the failing one's penalty: 9 of 10 went there
  const pki = await makePki(TD);
  const failing = await startUpstream(pki, { handler: always503 });
  const healthy = await startUpstream(pki, { handler: continuesAtOnce });
  const fx = await startBalanced(pki, { ports: [failing.port, healthy.port], outlierDetection: { consecutiveFailures: 0, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 } });
  t.teardown(async () => {
    await fx.close();
    await failing.close();
    await healthy.close();
  });
  const calls = 8;
  let served = 0;
  for (let i = 0; i < calls; i++) if ((await slowPutAfterContinue(fx.port)) === 200) served++;
  t.ok(failing.requests <= 2, `the failing endpoint saw ${failing.requests} of ${calls} (it answers 503 before any 100: not retried)`);
  t.ok(served >= calls - 2, `${served} of ${calls} served`);
});
