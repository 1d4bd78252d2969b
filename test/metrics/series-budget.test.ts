// The series budget (traffic-metrics.ts DEFAULT_SERIES_BUDGET) bounds the request families'
// lines on /metrics for all peers together, where the caps per peer do not: past it a new
// series (an endpoint, a code, an error reason, a gRPC code) is counted on the overflow
// endpoint of its direction and method (peer and route __other__), so the totals stay whole;
// an endpoint made before keeps counting on its own series. The default holds 1,000 callers
// with 10 routes and 3 methods each (540,000 lines, 82 MB without it) to the budget.

import t from 'tap';
import { Metrics } from '../../src/metrics/registry.js';
import { DEFAULT_SERIES_BUDGET, TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { RequestRecord } from '../../src/metrics/traffic.js';

const FAMILIES = ['meshcar_requests_total', 'meshcar_request_duration_seconds', 'meshcar_grpc_responses_total', 'meshcar_request_errors_total'];

/** The page's sample lines of the request families, and the label sets of meshcar_requests_total with their values. */
function readPage(text: string): { lines: number; requests: Array<Record<string, string> & { value: number }> } {
  const samples = text.split('\n').filter((line) => FAMILIES.some((name) => line.startsWith(name)));
  const requests = samples
    .filter((line) => line.startsWith('meshcar_requests_total{'))
    .map((line) => ({ ...Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])), value: Number(line.slice(line.lastIndexOf(' ') + 1)) }));
  return { lines: samples.length, requests };
}

const record = (peer: string, path: string, extra: Partial<RequestRecord> = {}): RequestRecord => ({ direction: 'inbound', peer, method: 'GET', path, status: 200, durationSeconds: 0.002, ...extra });

t.test('past the budget new series go to the overflow endpoint; older endpoints keep theirs', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics, { seriesBudget: 400 });
  let sent = 0;
  for (let p = 0; p < 30; p++) {
    for (let r = 0; r < 5; r++) {
      traffic.requestFinished(record(`caller-${p}`, `/r${r}x/leaf`));
      sent++;
    }
  }
  // the first endpoint, made long before the budget ran out: a known code, a new code with an error, a gRPC answer
  traffic.requestFinished(record('caller-0', '/r0x/leaf'));
  traffic.requestFinished(record('caller-0', '/r0x/leaf', { status: 503, errorCode: 'upstream_timeout' }));
  traffic.requestFinished(record('caller-0', '/r0x/leaf', { grpcStatus: 14 }));
  sent += 3;
  const page = readPage(await metrics.render());
  // the budget is checked before a series is made: the last endpoint may pass it by its 18
  // lines (1 per code, 17 per status class); the overflow (GET 200 and 503) adds 2 + 2 x 17,
  // its error and gRPC series 2
  t.ok(page.lines <= 400 + 18 + 38, `${page.lines} lines of request families for 150 endpoints (400 budgeted)`);
  t.equal(page.requests.reduce((sum, s) => sum + s.value, 0), sent, 'meshcar_requests_total adds up to every request');
  const overflow = page.requests.filter((s) => s.peer === '__other__' && s.route === '__other__');
  t.same(overflow.map((s) => `${s.method} ${s.code}`).sort(), ['GET 200', 'GET 503'], 'the overflow endpoint keeps method and code');
  t.ok((overflow.find((s) => s.code === '200')?.value ?? 0) > 100, 'new endpoints past the budget counted there');
  t.equal(page.requests.find((s) => s.peer === 'caller-0' && s.route === '/r0x/leaf' && s.code === '200')?.value, 3, 'an endpoint made before the budget keeps its own series (two 200s and the gRPC answer)');
  t.notOk(page.requests.some((s) => s.peer === 'caller-0' && s.code === '503'), 'a code it had not answered goes to the overflow');
  const text = await metrics.render();
  t.match(text, /meshcar_request_errors_total\{direction="inbound",peer="__other__",route="__other__",reason="upstream_timeout"\} 1/, 'and its error reason');
  t.match(text, /meshcar_grpc_responses_total\{direction="inbound",peer="__other__",route="__other__",grpc_code="UNAVAILABLE"\} 1/, 'and its gRPC code');
  t.equal(traffic.routeOf(record('caller-29', '/new-one')), '__other__', 'the access log names the route its series carry');
  const first = traffic.endpoints().find((e) => e.peer === 'caller-0' && e.route === '/r0x/leaf');
  t.equal(first?.count, 4, '/endpoints still counts the endpoint itself');
});

t.test('the default budget holds 1,000 callers with 30 endpoints each', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  let sent = 0;
  for (let p = 0; p < 1000; p++) {
    for (let r = 0; r < 10; r++) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        traffic.requestFinished({ ...record(`spiffe://mesh.test/ns/default/sa/caller-${p}`, `/orders/r${r}x/items`), method });
        sent++;
      }
    }
  }
  const started = performance.now();
  const text = await metrics.render();
  const page = readPage(text);
  t.comment(`${page.lines} lines, ${(text.length / 1e6).toFixed(1)} MB, rendered in ${(performance.now() - started).toFixed(0)} ms`);
  t.ok(page.lines <= DEFAULT_SERIES_BUDGET + 18 + 3 * 18, `${page.lines} lines for 30,000 endpoints (budget ${DEFAULT_SERIES_BUDGET})`);
  t.ok(page.lines > DEFAULT_SERIES_BUDGET * 0.9, 'the budget is spent before the overflow takes over');
  t.equal(page.requests.reduce((sum, s) => sum + s.value, 0), sent, 'meshcar_requests_total adds up to every request');
});
