// Endpoints and failures: requests are spread over the endpoints (see balancing.test.ts); an endpoint that refuses
// connections is skipped when another one works and is a 503 when it is the only one; no
// answer within the upstream's timeout is a 504; a reset stream is a 502 (or a cut connection
// once the response has started); dns: endpoints resolve, and follow their records as they change.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { makePki, request, sleep, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import type { LookupAll } from '../../src/outbound/index.js';
import { pino } from 'pino';
import { EndpointSet, type UpstreamEndpoint } from '../../src/outbound/endpoints.js';
import { freePort } from '../helpers/process.js';

t.test('requests spread across two endpoints', async (t) => {
  const pki = await makePki(TD);
  const a = await startUpstream(pki);
  const b = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await a.close();
    await b.close();
  });
  // concurrent pairs: the balancer weighs outstanding requests, so both endpoints serve
  for (let i = 0; i < 5; i++) t.same((await Promise.all([request(fx.port), request(fx.port)])).map((r) => r.status), [200, 200]);
  t.equal(a.requests + b.requests, 10);
  t.ok(a.requests > 0 && b.requests > 0, `both served (${a.requests}/${b.requests})`);
  t.equal(a.handshakes.length + b.handshakes.length, 2, 'one session per endpoint');
  const endpoints = new Set((await fx.observer.waitForRequests(10)).map((r) => r.endpoint));
  t.same(endpoints, new Set([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]), 'records name the endpoint that served');
});

t.test('a refusing endpoint: skipped beside a good one, 503 upstream_unavailable alone', async (t) => {
  const pki = await makePki(TD);
  const good = await startUpstream(pki);
  const dead = await freePort();
  const fx = await startOutbound(pki, [
    { name: 'mixed', endpoints: [`127.0.0.1:${dead}`, `127.0.0.1:${good.port}`] },
    { name: 'ghost', endpoints: [`127.0.0.1:${dead}`] },
  ]);
  t.teardown(async () => {
    await fx.close();
    await good.close();
  });
  for (let i = 0; i < 4; i++) t.equal((await request(fx.port, { headers: { host: 'mixed' } })).status, 200, 'failed over to the good endpoint');
  t.equal(good.requests, 4);

  const started = Date.now();
  const alone = await request(fx.port, { headers: { host: 'ghost', 'x-request-id': 'ghost-1' } });
  t.equal(alone.status, 503);
  t.equal(alone.headers['x-meshcar-error'], 'upstream_unavailable');
  t.match(alone.json<object>(), { error: 'upstream_unavailable', message: /ECONNREFUSED/, requestId: 'ghost-1' });
  t.ok(Date.now() - started < 1000, 'refused fast');
  t.equal((await request(fx.port, { headers: { host: 'ghost' } })).status, 503, 'and again (the only endpoint is still tried)');
});

t.test('no response within the timeout → 504 upstream_timeout; a reset → 502 upstream_reset', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, {
    handler: (stream, headers) => {
      stream.on('error', () => {});
      const path = String(headers[':path']);
      if (path === '/hang') return; // never answers
      if (path === '/reset') return stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      if (path === '/reset-mid' || path === '/kill-session') {
        stream.respond({ ':status': 200 });
        stream.write('partial ');
        // (stream.close(code) would first end the stream cleanly, then reset it)
        setTimeout(() => (path === '/reset-mid' ? stream.destroy(new Error('boom')) : stream.session?.destroy()), 50);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('fine');
    },
  });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 300 }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const started = Date.now();
  const slow = await request(fx.port, { path: '/hang' });
  const took = Date.now() - started;
  t.equal(slow.status, 504);
  t.equal(slow.headers['x-meshcar-error'], 'upstream_timeout');
  t.equal(slow.json<{ error: string }>().error, 'upstream_timeout');
  t.ok(took >= 280 && took < 1500, `answered at the timeout (${took} ms)`);

  const reset = await request(fx.port, { path: '/reset' });
  t.equal(reset.status, 502);
  t.equal(reset.headers['x-meshcar-error'], 'upstream_reset');

  // after the head is out, the only honest signal is a cut connection
  const cutShort = (path: string) =>
    new Promise<{ status: number; aborted: boolean; body: string }>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: fx.port, path, headers: { host: 'payments' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('error', () => {});
        res.on('close', () => resolve({ status: res.statusCode ?? 0, aborted: !res.complete, body }));
      });
      req.on('error', () => {});
    });
  const cut = await cutShort('/reset-mid');
  t.equal(cut.status, 200);
  t.equal(cut.body, 'partial ');
  t.equal(cut.aborted, true, 'a stream reset mid-body: the app sees an incomplete response');
  t.equal((await request(fx.port, { path: '/' })).status, 200, 'the session survives resets of single streams');

  const killed = await cutShort('/kill-session');
  t.equal(killed.body, 'partial ');
  t.equal(killed.aborted, true, 'the upstream connection dropped mid-body: incomplete too, not a clean end');
  t.equal((await request(fx.port, { path: '/' })).status, 200, 'and a new session serves the next request');

  const records = await fx.observer.waitForRequests(6);
  t.same(records.map((r) => [r.status, r.errorCode]), [
    [504, 'upstream_timeout'],
    [502, 'upstream_reset'],
    [200, 'upstream_reset'],
    [200, undefined],
    [200, 'upstream_reset'],
    [200, undefined],
  ]);
});

t.test('dns:localhost:PORT resolves and works', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`dns:localhost:${upstream.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  for (let i = 0; i < 3; i++) t.equal((await request(fx.port)).status, 200);
  t.equal(upstream.requests, 3);
  const records = await fx.observer.waitForRequests(3);
  t.equal(records[2]?.endpoint, `127.0.0.1:${upstream.port}`, 'the endpoint is the resolved address');
});

t.test('dns: endpoints follow their records; sessions to a vanished address wind down', async (t) => {
  const pki = await makePki(TD);
  const a = await startUpstream(pki, { host: '127.0.0.1' });
  const b = await startUpstream(pki, { host: '127.0.0.2', port: a.port });
  let records = [{ address: '127.0.0.1', family: 4 }];
  const lookups: string[] = [];
  const lookup: LookupAll = async (name) => {
    lookups.push(name);
    return records;
  };
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`dns:payments.internal:${a.port}`] }], { dnsRefreshMs: 100, lookup });
  t.teardown(async () => {
    await fx.close();
    await a.close();
    await b.close();
  });
  t.equal((await request(fx.port)).status, 200);
  t.equal(a.requests, 1);
  t.equal(lookups[0], 'payments.internal');

  records = [{ address: '127.0.0.2', family: 4 }];
  await sleep(300);
  t.equal((await request(fx.port)).status, 200);
  t.equal(b.requests, 1, 'the new address serves');
  t.equal(a.requests, 1);
  await waitUntil(() => a.sessions.size === 0, 'the session to the old address to close');
  t.equal(a.sessions.size, 0, 'the session to the old address was closed');

  records = [
    { address: '127.0.0.1', family: 4 },
    { address: '127.0.0.2', family: 4 },
  ];
  await sleep(300);
  // concurrent, so the balancer (power of two choices weighted by outstanding requests, not
  // round-robin) spreads them: sequential calls may all go to the faster address
  const statuses = await Promise.all(Array.from({ length: 20 }, () => request(fx.port).then((r) => r.status)));
  t.ok(statuses.every((s) => s === 200));
  t.equal(a.requests + b.requests, 22);
  t.ok(a.requests >= 2 && b.requests >= 2, `both addresses take traffic (${a.requests - 1}/${b.requests - 1})`);

  records = [];
  await sleep(300);
  t.equal((await request(fx.port)).status, 200, 'an empty answer keeps the last addresses');
});

t.test('a retry that avoids the endpoint it failed on goes back to it when the other is ejected or resting', async (t) => {
  const set = new EndpointSet(
    [
      { host: '127.0.0.1', port: 1 },
      { host: '127.0.0.1', port: 2 },
    ],
    { refreshMs: 1000, decayMs: 10_000, logger: pino({ level: 'silent' }) },
  );
  const [other, failedOn] = set.all() as [UpstreamEndpoint, UpstreamEndpoint];
  const picks = () => {
    const seen = new Set<string>();
    // openStream's rule: pick(now, avoid) ?? pick(now)
    for (let i = 0; i < 200; i++) seen.add((set.pick(performance.now(), failedOn) ?? set.pick(performance.now()))?.key ?? 'none');
    return [...seen];
  };
  other.ejected = true;
  t.same(picks(), [failedOn.key], 'the other ejected: the retry goes back to the healthy endpoint');
  other.ejected = false;
  other.downUntil = performance.now() + 60_000; // the running time, as pool-failover.ts sets it
  t.same(picks(), [failedOn.key], 'the other resting after a refused connect: the same');
  other.downUntil = 0;
  t.same(picks(), [other.key], 'the other healthy: the retry goes there');
  failedOn.ejected = true;
  other.ejected = true;
  t.ok(set.pick(performance.now(), failedOn) !== undefined, 'every endpoint ejected: still one to try (better than refusing)');
});
