// The series budget (traffic-metrics.ts DEFAULT_SERIES_BUDGET) bounds the request families'
// lines on /metrics for all peers together, where the caps per peer do not: past it a new
// series (an endpoint, a code, an error reason, a gRPC code) is counted on the overflow
// endpoint of its direction and method (peer and route __other__), so the totals stay whole;
// an endpoint made before keeps counting on its own series. The default holds 1,000 callers
// with 10 routes and 3 methods each (540,000 lines, 82 MB without it) to the budget.

import t from 'tap';
import { Metrics } from '../../src/metrics/registry.js';
import { DEFAULT_SERIES_BUDGET, DEFAULT_SERIES_BYTE_BUDGET, TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { RequestRecord } from '../../src/metrics/traffic.js';

/** What the README promises of the request families' text: about 13 MB at most, under the 16 MB a worker's answer may hold. */
const PAGE_BYTES = 13.5e6;

const FAMILIES = ['meshcar_requests_total', 'meshcar_request_duration_seconds', 'meshcar_grpc_responses_total', 'meshcar_request_errors_total'];

/** The page's sample lines of the request families, and the label sets of meshcar_requests_total with their values. */
function readPage(text: string): { lines: number; bytes: number; requests: Array<Record<string, string> & { value: number }> } {
  const samples = text.split('\n').filter((line) => FAMILIES.some((name) => line.startsWith(name)));
  const requests = samples
    .filter((line) => line.startsWith('meshcar_requests_total{'))
    .map((line) => ({ ...Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])), value: Number(line.slice(line.lastIndexOf(' ') + 1)) }));
  return { lines: samples.length, bytes: samples.reduce((sum, line) => sum + line.length + 1, 0), requests };
}

const record = (peer: string, path: string, extra: Partial<RequestRecord> = {}): RequestRecord => ({ direction: 'inbound', peer, method: 'GET', path, status: 200, durationSeconds: 0.002, ...extra });

t.test('past the budget new series go to the overflow endpoint; older endpoints keep theirs', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics, { seriesBudget: 400, seriesByteBudget: 1e9 });
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
  t.ok(page.bytes <= PAGE_BYTES, `${(page.bytes / 1e6).toFixed(1)} MB of them (budget ${(DEFAULT_SERIES_BYTE_BUDGET / 1e6).toFixed(1)} MB)`);
  t.ok(page.lines > DEFAULT_SERIES_BUDGET * 0.9 || page.bytes > DEFAULT_SERIES_BYTE_BUDGET * 0.9, 'a budget is spent before the overflow takes over');
  t.equal(page.requests.reduce((sum, s) => sum + s.value, 0), sent, 'meshcar_requests_total adds up to every request');
});

// labels at their caps (peers and routes of 128 characters) print ~380 bytes a line: 100,000
// lines made 38 MB, over the 16 MB a worker's answer to the primary may hold (a review); the
// byte budget stops them first
t.test('labels at their caps: the byte budget holds the page', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  const long = (prefix: string, i: number) => `${prefix}${i}`.padEnd(120, 'x');
  let sent = 0;
  for (let p = 0; p < 1000; p++) {
    for (let r = 0; r < 10; r++) {
      traffic.requestFinished(record(`spiffe://mesh.test/${long('caller', p)}`, `/orders-${r}/${'items/'.repeat(18)}`));
      sent++;
    }
  }
  const page = readPage(await metrics.render());
  t.comment(`${page.lines} lines, ${(page.bytes / 1e6).toFixed(1)} MB`);
  t.ok(page.bytes <= PAGE_BYTES, `${(page.bytes / 1e6).toFixed(1)} MB (budget ${(DEFAULT_SERIES_BYTE_BUDGET / 1e6).toFixed(1)} MB)`);
  t.equal(page.requests.reduce((sum, s) => sum + s.value, 0), sent, 'meshcar_requests_total adds up to every request');
});

// an endpoint made before the budget, past it answering a gRPC code for the first time: the
// overflow's series takes it, and /endpoints lists no overflow row no request of its own made
t.test('past the budget, an overflow made for series alone is no /endpoints row', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  // ten endpoints of 18 lines each spend it all
  const traffic = new TrafficMetrics(metrics, { seriesBudget: 180, seriesByteBudget: 1e9 });
  for (let i = 0; i < 10; i++) traffic.requestFinished(record('caller', `/r${i}x`));
  traffic.requestFinished(record('caller', '/r0x', { grpcStatus: 5 }));
  t.match(await metrics.render(), /meshcar_grpc_responses_total\{direction="inbound",peer="__other__",route="__other__",grpc_code="NOT_FOUND"\} 1/);
  t.notOk(traffic.endpoints().some((e) => e.peer === '__other__'), 'no __other__ row');
  t.notOk(traffic.discoveryRows().some((e) => e.peer === '__other__'), 'nor in the discovery document');
});

// meshcar_request_errors_total has no method label: eight methods' errors on one route are one
// series per reason, not eight (the budget counted eight, and was spent early: a review)
t.test('error series are counted as the page prints them', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics, { seriesBudget: 400, seriesByteBudget: 1e9 });
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH'];
  for (const peer of ['caller-0', 'caller-1']) {
    for (const method of methods) {
      for (let reason = 0; reason < 10; reason++) traffic.requestFinished(record(peer, '/a', { method, status: 503, errorCode: `reason_${reason}` }));
    }
  }
  // 16 endpoints of 18 lines and 20 error series: 308 lines of 400
  const before = readPage(await metrics.render()).lines;
  t.equal(before, 308, 'the page as counted');
  traffic.requestFinished(record('caller-0', '/b'));
  t.ok(readPage(await metrics.render()).requests.some((s) => s.peer === 'caller-0' && s.route === '/b'), 'a new endpoint still has series of its own');
});
