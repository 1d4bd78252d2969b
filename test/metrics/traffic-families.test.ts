// The outbound resilience families (retries, retry budget, outlier ejection, circuit breaker)
// as Prometheus really reads them: a real Sidecar (its TrafficMetrics, the observer that
// forwards to it, its registry and admin port) in front of real mTLS upstreams, and the
// rendered GET /metrics text checked for names, labels and values. And metrics.requests: false
// leaves every traffic family out while process, identity and build metrics stay.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';
import { APP_ID, defaultHandler, makePki, request, startUpstream, TD, UPSTREAM_ID, type H2Handler, type UpstreamServer } from '../helpers/outbound-fixture.js';
import type { TestPki } from '../helpers/pki.js';
import { frontendFilesHead } from '../helpers/files-frontend.js';

const silent = pino({ level: 'silent' });

const always503: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 503 }, { endStream: true });
};

/** 503 to the first attempt of each x-request-id, then the default answers. */
function firstAttemptFails(): H2Handler {
  const seen = new Map<string, number>();
  return (stream, headers, flags) => {
    const id = String(headers['x-request-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (seen.get(id) === 1) return always503(stream, headers, flags);
    defaultHandler(stream, headers, flags);
  };
}

interface Upstreams {
  flaky: UpstreamServer;
  down: UpstreamServer;
  good: UpstreamServer;
  bad: UpstreamServer;
  narrow: UpstreamServer;
  /** Streams the narrow upstream holds until released. */
  held: http2.ServerHttp2Stream[];
}

async function startUpstreams(pki: TestPki): Promise<Upstreams> {
  const held: http2.ServerHttp2Stream[] = [];
  return {
    flaky: await startUpstream(pki, { handler: firstAttemptFails() }),
    down: await startUpstream(pki, { handler: always503 }),
    good: await startUpstream(pki),
    bad: await startUpstream(pki, { handler: always503 }),
    narrow: await startUpstream(pki, {
      handler: (stream) => {
        stream.on('error', () => {});
        stream.resume();
        held.push(stream);
      },
    }),
    held,
  };
}

/** A sidecar config as an operator writes it: identity from files, one upstream per family. */
async function sidecarConfig(dir: string, pki: TestPki, up: Upstreams, requests: boolean): Promise<string> {
  const head = await frontendFilesHead(dir, pki);
  const upstream = (name: string, servers: UpstreamServer[], extra: string[]) => [
    `    ${name}:`,
    `      endpoints: [${servers.map((s) => `127.0.0.1:${s.port}`).join(', ')}]`,
    `      identity: ${UPSTREAM_ID}`,
    ...extra.map((line) => `      ${line}`),
  ];
  const file = join(dir, `frontend-${requests}.yaml`);
  await writeFile(
    file,
    [
      ...head,
      ...upstream('flaky', [up.flaky], ['retries: {backoff: {base: 1ms, max: 5ms}}']),
      // no budget at all: every retry it wants is refused
      ...upstream('down', [up.down], ['retries: {budget: {ratio: 0, minPerSecond: 0}}']),
      // the first 503 ejects the failing endpoint, for longer than the test runs
      ...upstream('ejecting', [up.good, up.bad], ['outlierDetection: {consecutiveFailures: 1, baseEjection: 10m}', 'retries: {backoff: {base: 1ms, max: 5ms}}']),
      ...upstream('narrow', [up.narrow], ['circuitBreaker: {maxRequests: 1}']),
      'admin:',
      '  listen: 127.0.0.1:0',
      'metrics:',
      `  requests: ${requests}`,
      '',
    ].join('\n'),
  );
  return file;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      })
      .on('error', reject);
  });
}

/** Sample lines of the rendered text for exactly this series name, as `name{labels} value`. */
function samples(text: string, family: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${family}{`) || line.startsWith(`${family} `));
}

interface Traffic {
  /** Statuses the app saw, per upstream. */
  statuses: Record<string, number[]>;
}

/** The same calls for both sidecars: one retry that succeeds, one the budget refuses, an ejection, a circuit refusal. */
async function drive(port: number, up: Upstreams, ejected: () => Promise<boolean>, run: string): Promise<Traffic> {
  const call = (host: string, id: string) => request(port, { path: '/echo', headers: { host, 'x-request-id': `${run}-${id}` } });
  const statuses: Record<string, number[]> = { flaky: [], down: [], ejecting: [], narrow: [] };
  statuses.flaky!.push((await call('flaky', 'f-1')).status);
  statuses.down!.push((await call('down', 'd-1')).status);
  // the balancer tries the new endpoints in its own order: call until the bad one has been
  // hit (and ejected), which the caller tells by its own means
  for (let i = 0; i < 50 && up.bad.requests === 0; i++) statuses.ejecting!.push((await call('ejecting', `e-${i}`)).status);
  if (!(await ejected())) throw new Error('the failing endpoint was never ejected');
  // circuit: one request held in flight, the next one refused at once
  const heldBefore = up.held.length;
  const first = call('narrow', 'n-1');
  for (let i = 0; i < 500 && up.held.length === heldBefore; i++) await new Promise((r) => setTimeout(r, 5));
  statuses.narrow!.push((await call('narrow', 'n-2')).status);
  for (const stream of up.held.splice(0)) stream.respond({ ':status': 200 }, { endStream: true });
  statuses.narrow!.unshift((await first).status);
  return { statuses };
}

t.test('resilience families as GET /metrics renders them', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstreams(pki);
  t.teardown(async () => {
    for (const s of [up.flaky, up.down, up.good, up.bad, up.narrow]) await s.close();
  });

  t.test('metrics.requests: true', async (t) => {
    const config = await loadSidecarConfig(await sidecarConfig(t.testdir(), pki, up, true));
    const sidecar = new Sidecar(config, silent);
    t.teardown(() => sidecar.stop());
    const addresses = await sidecar.start();
    const metrics = async () => {
      const res = await get(addresses.admin.port, '/metrics');
      t.equal(res.status, 200);
      return res.body;
    };
    const ejectedNow = async () => {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        if (samples(await metrics(), 'meshcar_outlier_ejections_total').length > 0) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    };
    const traffic = await drive(addresses.outbound!.port, up, ejectedNow, 'on');
    t.same(traffic.statuses.flaky, [200], 'flaky: retried to success');
    t.same(traffic.statuses.down, [503], "down: the upstream's 503, not retried");
    t.ok(traffic.statuses.ejecting!.every((s) => s === 200), 'ejecting: every call answered (the 503 retried on the good endpoint)');
    t.same(traffic.statuses.narrow, [200, 503], 'narrow: the second call refused while the first was in flight');

    const text = await metrics();
    t.match(text, /^# TYPE meshcar_retries_total counter$/m);
    t.match(text, /^# TYPE meshcar_retry_budget_exhausted_total counter$/m);
    t.match(text, /^# TYPE meshcar_outlier_ejections_total counter$/m);
    // what counts toward an ejection, as the README says it: any 5xx, not only a 503
    t.match(text, /^# HELP meshcar_outlier_ejections_total .*\(connect failure, reset, timeout, any 5xx answer; a gRPC answer by its grpc-status\)/m);
    t.match(text, /^# TYPE meshcar_upstream_ejected_endpoints gauge$/m);
    t.match(text, /^# TYPE meshcar_circuit_open_total counter$/m);
    const ejectingRetries = up.bad.requests; // each 503 of the bad endpoint was retried once, on the good one
    t.same(
      samples(text, 'meshcar_retries_total').sort(),
      [`meshcar_retries_total{upstream="ejecting",reason="status_503",outcome="success"} ${ejectingRetries}`, 'meshcar_retries_total{upstream="flaky",reason="status_503",outcome="success"} 1'],
      'one retry per 503 that was retried, by upstream, reason and outcome',
    );
    t.equal(ejectingRetries, 1, 'the bad endpoint failed once and was ejected');
    t.same(samples(text, 'meshcar_retry_budget_exhausted_total'), ['meshcar_retry_budget_exhausted_total{upstream="down"} 1']);
    t.same(samples(text, 'meshcar_outlier_ejections_total'), ['meshcar_outlier_ejections_total{upstream="ejecting"} 1']);
    t.same(samples(text, 'meshcar_upstream_ejected_endpoints'), ['meshcar_upstream_ejected_endpoints{upstream="ejecting"} 1']);
    t.same(samples(text, 'meshcar_circuit_open_total'), ['meshcar_circuit_open_total{upstream="narrow"} 1']);
    // and the request families beside them, with the app-visible statuses
    t.ok(samples(text, 'meshcar_requests_total').includes('meshcar_requests_total{direction="outbound",peer="narrow",method="GET",route="/echo",code="503"} 1'), 'the circuit refusal is a 503 request');
    t.ok(samples(text, 'meshcar_request_errors_total').includes('meshcar_request_errors_total{direction="outbound",peer="narrow",route="/echo",reason="circuit_open"} 1'), 'with reason circuit_open');
    t.ok(samples(text, 'meshcar_requests_total').includes('meshcar_requests_total{direction="outbound",peer="down",method="GET",route="/echo",code="503"} 1'));
    t.ok(samples(text, 'meshcar_upstream_sessions').length >= 4, 'sessions per upstream');
  });

  t.test('metrics.requests: false leaves the traffic families out', async (t) => {
    for (const s of [up.flaky, up.down, up.good, up.bad, up.narrow]) s.requests = 0;
    const config = await loadSidecarConfig(await sidecarConfig(t.testdir(), pki, up, false));
    const sidecar = new Sidecar(config, silent);
    t.teardown(() => sidecar.stop());
    const addresses = await sidecar.start();
    // no metric tells of the ejection now: the bad endpoint stops getting calls once it is out
    const ejectedNow = async () => {
      const before = up.bad.requests;
      for (let i = 0; i < 20; i++) await request(addresses.outbound!.port, { path: '/echo', headers: { host: 'ejecting', 'x-request-id': `x-${i}` } });
      return up.bad.requests === before;
    };
    const traffic = await drive(addresses.outbound!.port, up, ejectedNow, 'off');
    t.same(traffic.statuses.flaky, [200], 'the same traffic: retries still work');
    t.same(traffic.statuses.down, [503]);
    t.same(traffic.statuses.narrow, [200, 503], 'and the circuit breaker');

    const text = (await get(addresses.admin.port, '/metrics')).body;
    for (const family of [
      'meshcar_requests_total',
      'meshcar_request_duration_seconds_bucket',
      'meshcar_request_errors_total',
      'meshcar_upstream_sessions',
      'meshcar_upstream_active_streams',
      'meshcar_retries_total',
      'meshcar_retry_budget_exhausted_total',
      'meshcar_outlier_ejections_total',
      'meshcar_upstream_ejected_endpoints',
      'meshcar_circuit_open_total',
    ]) {
      t.same(samples(text, family), [], `no ${family} samples`);
    }
    t.same(samples(text, 'meshcar_build_info').length, 1, 'build info stays');
    const expiry = samples(text, 'meshcar_identity_cert_expiry_timestamp_seconds');
    t.equal(expiry.length, 1, 'identity metrics stay');
    t.match(expiry[0], `meshcar_identity_cert_expiry_timestamp_seconds{spiffe_id="${APP_ID}"} `);
    t.ok(Number(expiry[0]?.split(' ').pop()) > Date.now() / 1000, 'with the SVID expiry');
    t.ok(samples(text, 'process_cpu_user_seconds_total').length === 1, 'process metrics stay');
    t.same(JSON.parse((await get(addresses.admin.port, '/endpoints')).body), { endpoints: [] }, '/endpoints is empty too');
  });
});
