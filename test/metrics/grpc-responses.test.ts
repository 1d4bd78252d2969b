// meshcar_grpc_responses_total as TrafficMetrics fills it from request records: one series per
// direction, peer, route and grpc_code, with the peer and route meshcar_requests_total gives the
// same request (its caps included), none for a request that is not gRPC, `none` and UNKNOWN
// where gRPC has them, at most 18 series per direction, peer and route, none at all with
// metrics.requests off (the access log's grpcStatus stays); and the grpc-status parsing the
// data plane feeds it with.
// The whole path through real sidecars is test/e2e/grpc-status-metrics.test.ts.

import t from 'tap';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import type { RequestRecord } from '../../src/metrics/traffic.js';
import { grpcCodeLabel, GRPC_CODE_NAMES } from '../../src/metrics/grpc-codes.js';
import { grpcStatusIn, grpcStatusValue, isGrpcRequest } from '../../src/http/grpc-status.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { pino } from 'pino';
import { LiveObservers } from '../../src/metrics/live-observers.js';
import { NO_OBSERVER } from '../../src/metrics/traffic.js';

function record(over: Partial<RequestRecord>): RequestRecord {
  return { direction: 'inbound', peer: 'frontend', method: 'POST', path: '/shop.Orders/Get', status: 200, durationSeconds: 0.001, ...over };
}

function grpcLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('meshcar_grpc_responses_total{'));
}

t.test('the 17 codes by name, UNKNOWN beyond them, none without a status', async (t) => {
  t.equal(GRPC_CODE_NAMES.length, 17);
  t.equal(grpcCodeLabel(0), 'OK');
  t.equal(grpcCodeLabel(5), 'NOT_FOUND');
  t.equal(grpcCodeLabel(16), 'UNAUTHENTICATED');
  t.equal(grpcCodeLabel(17), 'UNKNOWN');
  t.equal(grpcCodeLabel(4_000_000), 'UNKNOWN');
  t.equal(grpcCodeLabel(null), 'none');
});

t.test('grpc-status values and gRPC requests', async (t) => {
  t.equal(grpcStatusValue('5'), 5);
  t.equal(grpcStatusValue('99'), 99, 'kept as it came (the label says UNKNOWN)');
  for (const bad of ['', 'five', '-1', ' 5', '5.0', '12345678901', undefined]) t.equal(grpcStatusValue(bad), 2, `${JSON.stringify(bad)} reads as UNKNOWN`);
  t.equal(grpcStatusIn({ 'grpc-status': '0' }), 0);
  t.equal(grpcStatusIn([':status', '200', 'content-type', 'application/grpc', 'grpc-status', '14']), 14);
  t.equal(grpcStatusIn({ 'content-type': 'application/grpc' }), null);
  t.equal(grpcStatusIn(undefined), null);
  for (const type of ['application/grpc', 'application/grpc+proto', 'Application/GRPC+json', 'application/grpc; charset=x']) t.ok(isGrpcRequest(type), type);
  for (const type of ['application/json', 'application/grpc-web', 'application/grpcfoo', 'text/plain', undefined, '']) t.notOk(isGrpcRequest(type), String(type));
});

t.test('one series per direction, peer, route and grpc_code; the same peer and route as meshcar_requests_total', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics, { routeCap: 2, peerCap: 2 });
  traffic.requestFinished(record({ grpcStatus: 0 }));
  traffic.requestFinished(record({ grpcStatus: 0 }));
  traffic.requestFinished(record({ grpcStatus: 5 }));
  traffic.requestFinished(record({ grpcStatus: 42 }));
  traffic.requestFinished(record({ grpcStatus: null, status: 499, errorCode: 'reset' }));
  traffic.requestFinished(record({ direction: 'outbound', peer: 'orders', grpcStatus: 14, status: 503, errorCode: 'upstream_unavailable' }));
  // beyond the caps: the same __other__ labels as the contract's family
  traffic.requestFinished(record({ path: '/shop.Orders/List', grpcStatus: 0 }));
  traffic.requestFinished(record({ path: '/shop.Orders/Delete', grpcStatus: 0 }));
  traffic.requestFinished(record({ peer: 'b', grpcStatus: 0 }));
  traffic.requestFinished(record({ peer: 'c', grpcStatus: 0 }));
  // not gRPC: no series
  traffic.requestFinished(record({ method: 'GET', path: '/health', grpcStatus: undefined }));
  const text = await metrics.render();
  t.same(grpcLines(text).sort(), [
    'meshcar_grpc_responses_total{direction="inbound",peer="__other__",route="/shop.Orders/Get",grpc_code="OK"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="b",route="/shop.Orders/Get",grpc_code="OK"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/Get",grpc_code="NOT_FOUND"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/Get",grpc_code="OK"} 2',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/Get",grpc_code="UNKNOWN"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/Get",grpc_code="none"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/List",grpc_code="OK"} 1',
    'meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="__other__",grpc_code="OK"} 1',
    'meshcar_grpc_responses_total{direction="outbound",peer="orders",route="/shop.Orders/Get",grpc_code="UNAVAILABLE"} 1',
  ].sort());
  // every gRPC series has the peer and route of a meshcar_requests_total series
  const pairs = (family: string) => new Set(text.split('\n').filter((l) => l.startsWith(`${family}{`)).map((l) => /direction="[^"]*",peer="[^"]*"/.exec(l)?.[0] + /route="[^"]*"/.exec(l)?.[0]));
  const requests = pairs('meshcar_requests_total');
  for (const p of pairs('meshcar_grpc_responses_total')) t.ok(requests.has(p), `${p} is a meshcar_requests_total peer and route`);
  t.match(text, /meshcar_requests_total\{direction="inbound",peer="frontend",method="POST",route="\/shop.Orders\/Get",code="200"\} 4/, 'the contract family is unchanged: no grpc label, NOT_FOUND still counts as 200');
  const check = await promtoolCheck(text);
  t.equal(check.code, 0, check.output);
});

t.test('bounded: 10,000 calls to random methods with random statuses make at most 101 routes × 18 codes', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  for (let i = 0; i < 10_000; i++) {
    const status = i % 41 === 0 ? null : i % 40;
    traffic.requestFinished(record({ path: `/svc${(i * 31) % 500}.S/M${'abcdefghij'[i % 10]}`, grpcStatus: status }));
  }
  const values = (await metrics.grpcResponses.get()).values;
  t.equal(new Set(values.map((v) => v.labels.route)).size, 101, '100 learned routes, then __other__, as meshcar_requests_total');
  t.ok(values.length <= 101 * 18, `${values.length} series`);
  t.same(new Set(values.map((v) => v.labels.grpc_code)).size, 18, 'the 17 codes and none, nothing else');
  t.equal(values.reduce((sum, v) => sum + v.value, 0), 10_000, 'every call counted');
});

t.test('metrics.requests: false: no gRPC series; the access line still has grpcStatus', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const live = new LiveObservers({ tlsFailures: NO_OBSERVER, traffic: new TrafficMetrics(metrics), logger }, { requests: false, access: true });
  live.observer.requestFinished(record({ grpcStatus: 5, requestId: 'off' }));
  live.observer.requestFinished(record({ method: 'GET', path: '/health', requestId: 'plain' }));
  t.same(grpcLines(await metrics.render()), [], 'no series');
  t.match(lines.find((l) => l.requestId === 'off'), { grpcStatus: 5 });
  t.notOk('grpcStatus' in (lines.find((l) => l.requestId === 'plain') ?? {}), 'not gRPC: no field');
  live.switchTo({ requests: true, access: false });
  live.observer.requestFinished(record({ grpcStatus: 5 }));
  t.same(grpcLines(await metrics.render()), ['meshcar_grpc_responses_total{direction="inbound",peer="frontend",route="/shop.Orders/Get",grpc_code="NOT_FOUND"} 1'], 'counted once metrics.requests is turned on (a reload)');
});
