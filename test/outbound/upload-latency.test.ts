// An endpoint's latency, as the balancer weighs it, counts from the end of the request: while an
// app's upload is still coming the time is the app's. Counted from the stream's opening, a
// healthy endpoint's answer to a 500 ms upload weighed 500 ms, more than the 250 ms penalty of
// an endpoint failing every request at once, and the failing one drew the calls (the gRPC
// review: 7 of 8 idempotent PUTs went to it first, 11 of 12 client-stream calls failed).

import t from 'tap';
import http from 'node:http';
import { makePki, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
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
