// The access log's `route` is the route label of the request's series. Past a peer's endpoint
// cap (300 route and method pairs) a new endpoint is counted under route="__other__", and the
// log line still said the learned route: a line no series could be matched to. The records go
// through the sidecar's own observers (LiveObservers: the metrics, then the access log).

import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { LiveObservers } from '../../src/metrics/live-observers.js';
import { NO_OBSERVER } from '../../src/metrics/traffic.js';

t.test("past the endpoint cap, the access log's route is __other__ as the series' is", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = new Metrics();
  const live = new LiveObservers({ tlsFailures: NO_OBSERVER, traffic: new TrafficMetrics(metrics), logger: pino({ level: 'info' }, sink) }, { requests: true, access: true });
  const finished = (method: string, path: string, requestId: string) => live.observer.requestFinished({ direction: 'inbound', peer: 'frontend', method, path, status: 200, durationSeconds: 0.001, requestId });
  // 60 routes × 6 methods: 360 endpoints, the route cap (100) not reached
  for (let i = 0; i < 60; i++) for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) finished(method, `/r${i}`, `r${i}`);
  finished('GET', '/late', 'late-one');
  finished('GET', '/r0', 'early-one');
  await new Promise<void>((resolve) => setImmediate(resolve));
  const text = await metrics.registry.metrics();
  t.notMatch(text, /route="\/late"/, 'no series for /late: it is past the cap');
  t.match(text, /meshcar_requests_total\{direction="inbound",peer="frontend",method="GET",route="__other__",code="200"\} \d+/);
  t.equal(lines.find((line) => line.requestId === 'late-one')?.route, '__other__', 'its log line says __other__ too');
  t.equal(lines.find((line) => line.requestId === 'early-one')?.route, '/r0', 'an endpoint under the cap keeps its route');
});
