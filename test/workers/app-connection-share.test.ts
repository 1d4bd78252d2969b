// inbound.limits.maxAppConnections with workers: 2: the app is one process whatever the
// sidecar's workers, so each worker keeps its share of the limit (half of it here) and the app
// never has more connections from the sidecar than the limit says. Before, each worker kept
// the whole limit, and the app took twice it (a review measured 6 requests at once on an app
// limited to 2, with 3 workers).

import t from 'tap';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture } from '../helpers/workers.js';

const fx = workersFixture(t);
/** How long the app takes per request: long enough that requests on separate connections meet. */
const APP_MS = 400;

t.test('two workers share maxAppConnections: 2, one connection each', { timeout: 60_000 }, async (t) => {
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let peak = 0;
  const app = http.createServer((req, res) => {
    sockets.add(req.socket);
    peak = Math.max(peak, ++inFlight);
    req.resume();
    // the app's own work, not a wait of the test's
    setTimeout(() => {
      inFlight--;
      res.end('done');
    }, APP_MS);
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => app.close(resolve)));
  app.keepAliveTimeout = 60_000;
  const sidecar = await startSidecar(fx.ca, {
    service: 'orders',
    inbound: { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, limits: '{maxAppConnections: 2}' },
    extraYaml: 'workers: 2',
  });
  t.teardown(() => sidecar.stop('SIGKILL'));

  // eight callers' connections at once: the primary hands them to the workers in turn
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 8 }, () => probeRequest(sidecar.inboundPort, fx.probe, '/work')));
  const took = Date.now() - started;
  t.same(answers.map((a) => a.status), Array(8).fill(200), 'every request answered');
  t.ok(peak <= 2, `the app never had more than 2 requests at once from the sidecar (peak ${peak})`);
  t.ok(sockets.size <= 2, `nor more than 2 connections (${sockets.size})`);
  // eight requests of 400 ms over at most two connections: four rounds
  t.ok(took >= 4 * APP_MS - 50, `the requests waited their turn (${took} ms for 8)`);
});
