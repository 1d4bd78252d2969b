// Safe retries: only idempotent requests (or ones with an Idempotency-Key), only before any of
// the response reached the app, on connect failures, resets, 503 and 429; backoff or
// Retry-After, never past the deadline; a budget that keeps an outage from multiplying load;
// another endpoint when there is one. Real mTLS upstreams on loopback, counting what they saw.

import t from 'tap';
import http2 from 'node:http2';
import { request as httpRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { appIdentity, defaultHandler, echo, envTestCodec, makePki, RecordingObserver, request, silent, startUpstream, TD, UPSTREAM_ID, type H2Handler } from '../helpers/outbound-fixture.js';
import type { TestPki } from '../helpers/pki.js';
import { waitFor } from '../helpers/mesh.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { RetryConfig } from '../../src/config/upstream-policy-config.js';
import { createOutbound } from '../../src/outbound/index.js';
import { appDeadlineMs, backoffMs, retryAfterMs, RetryBudget, RETRY_DEFAULTS } from '../../src/outbound/retry.js';


class RetryObserver extends RecordingObserver {
  readonly retries: Array<{ upstream: string; reason: string; outcome: string }> = [];
  exhausted = 0;
  retryAttempted(upstream: string, reason: string, outcome: string): void {
    this.retries.push({ upstream, reason, outcome });
  }
  retryBudgetExhausted(): void {
    this.exhausted += 1;
  }
}

interface Spec {
  endpoints: number[];
  timeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: Partial<RetryConfig>;
  codec?: 'meshcar' | 'node';
}

const FAST_BACKOFF: Partial<RetryConfig> = { backoffBaseMs: 1, backoffMaxMs: 5 };

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

async function start(t: TapTest, pki: TestPki, spec: Spec) {
  const observer = new RetryObserver();
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        {
          name: 'payments',
          endpoints: spec.endpoints.map((port) => parseEndpoint(`127.0.0.1:${port}`) as Endpoint),
          identity: UPSTREAM_ID,
          timeoutMs: spec.timeoutMs ?? 5000,
          ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
          routes: [],
          retries: { ...RETRY_DEFAULTS, ...FAST_BACKOFF, ...spec.retries },
        },
      ],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer,
    // codec-node-retries.test.ts runs this file again on the node codec (MESHCAR_TEST_H2_CODEC)
    ...((spec.codec ?? envTestCodec()) ? { codec: spec.codec ?? envTestCodec() } : {}),
  });
  const bound = await outbound.listen();
  t.teardown(() => outbound.close());
  return { port: bound.port, observer };
}

/** Answers `status` (with extra headers) to the first `n` requests, then echoes. */
function flaky(n: number, status: number, extra: http2.OutgoingHttpHeaders = {}): H2Handler {
  let seen = 0;
  return (stream, headers, flags) => {
    seen += 1;
    if (seen <= n) {
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': status, ...extra }, { endStream: true });
      return;
    }
    defaultHandler(stream, headers, flags);
  };
}

t.test('a flaky upstream (503s) is retried to success', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(2, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const res = await request(fx.port, { path: '/echo' });
  t.equal(res.status, 200);
  t.equal(up.requests, 3, 'two 503s, then the answer');
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_503:failure', 'status_503:success']);
  const records = await fx.observer.waitForRequests(1);
  t.equal(records[0]?.status, 200, 'one request record, with the final status');
  t.equal(records.length, 1);
});

t.test("a retry passes on the time left of the app's deadline, not the deadline as the app sent it (both codecs)", async (t) => {
  for (const codec of ['node', 'meshcar'] as const) {
    const pki = await makePki(TD);
    const seen: Array<{ grpc: unknown; own: unknown }> = [];
    const first = flaky(1, 503);
    const up = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        seen.push({ grpc: headers['grpc-timeout'], own: headers['x-request-timeout'] });
        first(stream, headers, flags);
      },
    });
    t.teardown(() => up.close());
    const fx = await start(t, pki, { endpoints: [up.port], codec });
    const res = await request(fx.port, { headers: { 'grpc-timeout': '4S', 'x-request-timeout': '3s' } });
    t.equal(res.status, 200, `${codec}: retried to success`);
    t.equal(seen.length, 2);
    t.same(seen[0], { grpc: '4S', own: '3s' }, `${codec}: the first attempt carries the app's own values`);
    const grpc = /^(\d+)m$/.exec(String(seen[1]?.grpc));
    const own = /^(\d+)ms$/.exec(String(seen[1]?.own));
    t.ok(grpc && Number(grpc[1]) <= 3000 && Number(grpc[1]) > 2000, `${codec}: the retry's grpc-timeout is the time left of the shorter deadline (${String(seen[1]?.grpc)})`);
    t.ok(own && own[1] === grpc?.[1], `${codec}: x-request-timeout says the same (${String(seen[1]?.own)})`);
  }
});

t.test('a retry in flight when the app leaves is counted as cancelled', async (t) => {
  const pki = await makePki(TD);
  let seen = 0;
  const up = await startUpstream(pki, {
    handler: (stream) => {
      seen += 1;
      stream.on('error', () => {});
      stream.resume();
      if (seen === 1) stream.respond({ ':status': 503 }, { endStream: true });
      // the retry is never answered: the app leaves first
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const req = httpRequest({ host: '127.0.0.1', port: fx.port, path: '/echo', headers: { host: 'payments' }, agent: false });
  req.on('error', () => {});
  req.end();
  await waitFor(async () => seen === 2, 5000, 'the retry reached the upstream');
  req.destroy();
  await waitFor(async () => fx.observer.retries.length === 1, 5000, 'the retry reported');
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_503:cancelled'], 'the retry (the first attempt is not one) has an outcome');
});

t.test('attempts bound the retries: the last 503 reaches the app', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(100, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], retries: { attempts: 1 } });
  const res = await request(fx.port);
  t.equal(res.status, 503);
  t.equal(res.headers['x-meshcar-error'], undefined, "the upstream's own 503");
  t.equal(up.requests, 2);
});

t.test('first connections refused: retried to success', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  t.teardown(() => up.close());
  let refused = 0;
  up.server.prependListener('connection', (socket: TLSSocket) => {
    if (refused < 2) {
      refused += 1;
      socket.destroy();
    }
  });
  up.server.on('tlsClientError', () => {});
  const fx = await start(t, pki, { endpoints: [up.port] });
  const res = await request(fx.port);
  t.equal(res.status, 200);
  t.equal(refused, 2);
  t.equal(up.requests, 1);
  t.ok(fx.observer.retries.every((r) => r.reason === 'connect_failure'), 'reason connect_failure');
  t.equal(fx.observer.retries.at(-1)?.outcome, 'success');
});

t.test('a POST the upstream refused unprocessed (REFUSED_STREAM) is sent again, body and all; one it reset otherwise is not', async (t) => {
  const pki = await makePki(TD);
  const bodies: string[] = [];
  let seen = 0;
  const resetFirst = (code: number): H2Handler => (stream, headers, flags) => {
    seen += 1;
    if (seen === 1) {
      stream.on('error', () => {});
      stream.close(code);
      return;
    }
    let body = '';
    stream.on('data', (c: Buffer) => (body += c));
    stream.on('end', () => bodies.push(body));
    defaultHandler(stream, headers, flags);
  };
  const refusing = await startUpstream(pki, { handler: resetFirst(http2.constants.NGHTTP2_REFUSED_STREAM) });
  t.teardown(() => refusing.close());
  const fx = await start(t, pki, { endpoints: [refusing.port] });
  const res = await request(fx.port, { method: 'POST', path: '/echo', body: 'order-1' });
  t.equal(res.status, 200, 'answered after the refusal');
  t.equal(refusing.requests, 2, 'sent twice');
  t.same(bodies, ['order-1'], 'the second time with its whole body');
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['reset:success'], 'one retry, which succeeded');

  seen = 0;
  const resetting = await startUpstream(pki, { handler: resetFirst(http2.constants.NGHTTP2_INTERNAL_ERROR) });
  t.teardown(() => resetting.close());
  const fx2 = await start(t, pki, { endpoints: [resetting.port] });
  const cut = await request(fx2.port, { method: 'POST', path: '/echo', body: 'order-2' });
  t.equal(cut.status, 502, 'a POST reset with INTERNAL_ERROR may have been processed: not sent again');
  t.equal(resetting.requests, 1);
});

t.test('a reset before the response is retried', async (t) => {
  const pki = await makePki(TD);
  let seen = 0;
  const up = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      seen += 1;
      if (seen === 1) {
        stream.on('error', () => {});
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      defaultHandler(stream, headers, flags);
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  t.equal((await request(fx.port)).status, 200);
  t.equal(up.requests, 2);
  t.same(fx.observer.retries.map((r) => r.reason), ['reset']);
});

t.test('POST: never retried without Idempotency-Key; retried (body replayed) with one', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const plain = await request(fx.port, { method: 'POST', body: 'charge me once' });
  t.equal(plain.status, 503, 'the 503 goes back to the app');
  t.equal(up.requests, 1, 'the upstream saw it once');

  const up2 = await startUpstream(pki, { handler: flaky(1, 503) });
  t.teardown(() => up2.close());
  const fx2 = await start(t, pki, { endpoints: [up2.port] });
  const keyed = await request(fx2.port, { method: 'POST', body: 'charge me once', headers: { 'idempotency-key': 'k-1' } });
  t.equal(keyed.status, 200);
  t.equal(up2.requests, 2);
  t.equal(keyed.json().body, 'charge me once', 'the body was replayed whole');
});

t.test('a chunked PUT is retried with its body replayed whole', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const body = 'x'.repeat(1000);
  const chunked = await request(fx.port, { method: 'PUT', path: '/echo', headers: { 'transfer-encoding': 'chunked' }, body });
  t.equal(chunked.status, 200);
  t.equal(up.requests, 2, 'the first attempt got a 503, the retry the answer');
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_503:success']);
  const seen = chunked.json();
  t.equal(seen.method, 'PUT');
  t.equal(seen.body, body, 'the retry carried the whole body');
});

/** 503 to the first attempt of each x-request-id, then the default answers (echo). */
function firstAttemptFails(attempts: Map<string, number>): H2Handler {
  return (stream, headers, flags) => {
    const id = String(headers['x-request-id']);
    const n = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, n);
    if (n === 1) {
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': 503 }, { endStream: true });
      return;
    }
    defaultHandler(stream, headers, flags);
  };
}

t.test('idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried; PATCH and POST are not', async (t) => {
  const pki = await makePki(TD);
  const attempts = new Map<string, number>();
  const up = await startUpstream(pki, { handler: firstAttemptFails(attempts) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const expected: Record<string, { status: number; attempts: number }> = {
    GET: { status: 200, attempts: 2 },
    HEAD: { status: 200, attempts: 2 },
    OPTIONS: { status: 200, attempts: 2 },
    PUT: { status: 200, attempts: 2 },
    DELETE: { status: 200, attempts: 2 },
    PATCH: { status: 503, attempts: 1 },
    POST: { status: 503, attempts: 1 },
  };
  for (const [method, want] of Object.entries(expected)) {
    const body = method === 'PUT' || method === 'PATCH' || method === 'POST' ? 'payload' : undefined;
    const viaHttp1 = await request(fx.port, { method, path: '/echo', headers: { 'x-request-id': `h1-${method}` }, ...(body ? { body } : {}) });
    const viaH2c = await h2(session, { ':method': method, ':path': '/echo', 'x-request-id': `h2c-${method}` }, body);
    t.same(
      { h1: viaHttp1.status, h1Attempts: attempts.get(`h1-${method}`), h2c: viaH2c.status, h2cAttempts: attempts.get(`h2c-${method}`) },
      { h1: want.status, h1Attempts: want.attempts, h2c: want.status, h2cAttempts: want.attempts },
      `${method}: ${want.attempts === 2 ? 'retried after the 503' : 'the 503 reaches the app, sent once'}`,
    );
    if (body && want.status === 200) t.equal(JSON.parse(viaH2c.body).body, body, `${method}: the retry replayed the body`);
  }
});

t.test('nothing is retried once the answer has started', async (t) => {
  const pki = await makePki(TD);
  // the first attempt of each request answers 200 and part of the body, then the test resets
  // it (destroy: RST_STREAM at once; close() would end the body first); a second attempt
  // (there must be none) would get a whole echo
  const started: http2.ServerHttp2Stream[] = [];
  const attempts = new Map<string, number>();
  const up = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      const id = String(headers['x-request-id']);
      attempts.set(id, (attempts.get(id) ?? 0) + 1);
      if (attempts.get(id)! > 1) return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('partial ');
      started.push(stream);
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const resetWhenAppSeesHead = () => started.shift()?.destroy(new Error('cut mid-body'));

  // HTTP/1.1 app: the head and the first bytes arrive, then the response is cut
  const h1 = await within(5000, new Promise<{ status: number; body: string; complete: boolean }>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: fx.port, path: '/echo', headers: { host: 'payments' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        resetWhenAppSeesHead();
      });
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
    });
    req.on('error', () => {});
    req.end();
  }));
  t.same(h1, { status: 200, body: 'partial ', complete: false }, 'HTTP/1.1: the app sees the cut answer, not a second one');
  const [h1Record] = await fx.observer.waitForRequests(1);
  t.equal(h1Record?.errorCode, 'upstream_reset');
  t.equal(up.requests, 1, 'the upstream saw the request once');

  // h2c app: same, the stream is reset after its first bytes
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const h2c = await within(5000, new Promise<{ status: number; body: string; rstCode: number | undefined }>((resolve) => {
    const stream = session.request({ ':authority': 'payments', ':path': '/echo' });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: string) => {
      body += c;
      resetWhenAppSeesHead();
    });
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, body, rstCode: stream.rstCode }));
  }));
  t.equal(h2c.status, 200);
  t.equal(h2c.body, 'partial ');
  t.not(h2c.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'h2c: the stream is reset, not ended as if whole');
  const records = await fx.observer.waitForRequests(2);
  t.equal(records[1]?.errorCode, 'upstream_reset');
  t.equal(up.requests, 2, 'one upstream request per app request: neither was retried');
  t.same(fx.observer.retries, [], 'no retry was attempted');
});

t.test('a body over the buffer limit is streamed and not retried', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, {
    handler: (stream, headers) => {
      // reads the whole body, then 503 the first time
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => {});
      stream.on('end', () => {
        if (up.requests === 1) stream.respond({ ':status': 503 }, { endStream: true });
        else echo(stream, headers);
      });
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], retries: { bufferLimitBytes: 1024 } });
  const res = await request(fx.port, { method: 'PUT', body: Buffer.alloc(4096, 97) });
  t.equal(res.status, 503);
  t.equal(up.requests, 1, 'not retried');
});

t.test('a full outage: the extra load stays within the budget', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1e9, 503) });
  t.teardown(() => up.close());
  // no time-based reserve (budgetMinPerSecond 0): the bound is 20% of the requests, however
  // long the run takes on a loaded machine
  const fx = await start(t, pki, { endpoints: [up.port], retries: { attempts: 2, budgetRatio: 0.2, budgetMinPerSecond: 0 } });
  const total = 200;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < total) {
        next += 1;
        statuses.push((await request(fx.port)).status);
      }
    }),
  );
  t.equal(statuses.length, total);
  t.ok(statuses.every((s) => s === 503));
  const extra = up.requests - total;
  // every request earns 0.2 of a retry and the budget is spent as soon as a whole one is there:
  // 40 in all, less what was still unspent when the last requests came (under 2)
  t.ok(extra <= 0.2 * total, `retries ${extra} ≤ 20% of ${total} (unbudgeted: ${2 * total})`);
  t.ok(extra >= 0.2 * total - 2, `and the budget was used (${extra} retries)`);
  t.equal(fx.observer.retries.length, extra, 'each retry reported');
  // a request asks for a second retry only if its first was granted: every request whose first
  // retry was refused counted one exhaustion, at most one per request
  t.ok(fx.observer.exhausted >= total - extra && fx.observer.exhausted <= total, `budget exhaustion counted (${fx.observer.exhausted})`);
});

t.test('Retry-After: 1 on a 429 delays the retry by about a second', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 429, { 'retry-after': '1' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const started = Date.now();
  const res = await request(fx.port);
  const took = Date.now() - started;
  t.equal(res.status, 200);
  t.equal(up.requests, 2);
  t.ok(took >= 950 && took < 2500, `waited ${took} ms`);
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_429:success']);
});

t.test('a Retry-After in none of the RFC forms is no Retry-After: the backoff applies, and the request is retried', async (t) => {
  const pki = await makePki(TD);
  // Date.parse reads this as 1 Jan 2099: a wait past any deadline, so the 503 went back at once
  const up = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': '2099-01-01' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 2000 });
  const res = await request(fx.port);
  t.equal(res.status, 200, 'retried after the backoff');
  t.equal(up.requests, 2);
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_503:success']);
});

t.test('a Retry-After beyond the deadline returns the 429 at once', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 429, { 'retry-after': '10' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 2000 });
  const started = Date.now();
  const res = await request(fx.port);
  t.equal(res.status, 429);
  t.equal(res.headers['retry-after'], '10', 'relayed as the upstream sent it');
  t.ok(Date.now() - started < 500, 'no wait');
  t.equal(up.requests, 1);
  const date = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() }) });
  t.teardown(() => date.close());
  const fx2 = await start(t, pki, { endpoints: [date.port], timeoutMs: 2000 });
  t.equal((await request(fx2.port)).status, 503, 'an HTTP date a minute away: same');
  t.equal(date.requests, 1);
});

t.test('without a deadline, a Retry-After longer than the idleTimeout returns the 503 at once', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': '3600' }) });
  t.teardown(() => up.close());
  // timeout 0: no deadline; the wait was bounded by nothing (an hour, review-up L3)
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 0, idleTimeoutMs: 2000 });
  const started = Date.now();
  const res = await request(fx.port);
  t.equal(res.status, 503);
  t.equal(res.headers['retry-after'], '3600', 'relayed as the upstream sent it');
  t.ok(Date.now() - started < 1000, `no wait (${Date.now() - started} ms)`);
  t.equal(up.requests, 1);
});

t.test('a retry goes to the other endpoint', async (t) => {
  const pki = await makePki(TD);
  const bad = await startUpstream(pki, { handler: flaky(1e9, 503) });
  const good = await startUpstream(pki);
  t.teardown(async () => {
    await bad.close();
    await good.close();
  });
  const fx = await start(t, pki, { endpoints: [bad.port, good.port], retries: { attempts: 1, budgetMinPerSecond: 1000 } });
  // concurrent requests: plain round-robin would send some retries back to the bad endpoint
  const results = await Promise.all(Array.from({ length: 20 }, () => request(fx.port)));
  t.same(
    results.map((r) => r.status),
    Array(20).fill(200),
  );
  t.equal(good.requests, 20, 'every request was answered by the good endpoint');
  t.ok(bad.requests >= 1 && bad.requests <= 20);
});

t.test('h2c: retried on 503, and a keyed POST replays its body', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(2, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const get = await h2(session, { ':method': 'GET', ':path': '/echo' });
  t.equal(get.status, 200);
  t.equal(up.requests, 3);
  const plain = await h2(session, { ':method': 'POST', ':path': '/echo' }, 'once');
  t.equal(plain.status, 200, 'a POST is not retried, but the upstream is healthy again');
  const upFlaky = await startUpstream(pki, { handler: flaky(1, 503) });
  t.teardown(() => upFlaky.close());
  const fx2 = await start(t, pki, { endpoints: [upFlaky.port] });
  const s2 = http2.connect(`http://127.0.0.1:${fx2.port}`);
  t.teardown(() => s2.close());
  const noKey = await h2(s2, { ':method': 'POST', ':path': '/echo' }, 'hello');
  t.equal(noKey.status, 503);
  t.equal(upFlaky.requests, 1);
  const keyed = await h2(s2, { ':method': 'POST', ':path': '/echo', 'idempotency-key': 'abc' }, 'hello');
  t.equal(keyed.status, 200);
  t.equal(JSON.parse(keyed.body).body, 'hello');
});

/** The promise's value, or a rejection after `ms` (a broken build fails fast instead of hanging). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no outcome within ${ms} ms`)), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

function h2(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':authority': 'payments', ...headers }, { endStream: body === undefined });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

t.test('helpers: Retry-After, backoff, budget, app deadlines', async (t) => {
  t.equal(retryAfterMs('3'), 3000);
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  t.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', now), 5000, 'an HTTP date: the time until then');
  t.equal(retryAfterMs(['Wed, 21 Oct 2015 07:30:00 GMT'], now), 120_000, 'the first of repeated headers');
  t.equal(retryAfterMs('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past: no wait');
  t.equal(retryAfterMs(' 7 ', now), 7000, 'delay-seconds, whitespace trimmed');
  t.equal(retryAfterMs('soon'), undefined);
  t.equal(retryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT', Date.parse('Sun, 06 Nov 1994 08:49:30 GMT')), 7000, 'the RFC 850 form');
  t.equal(retryAfterMs('Sun Nov  6 08:49:37 1994', Date.parse('Sun, 06 Nov 1994 08:49:30 GMT')), 7000, 'the asctime form, in GMT');
  // none of the RFC's forms: no Retry-After (the backoff applies); Date.parse read each as a past
  // date (no wait at all) or, for the last two, as one decades away
  for (const hostile of ['-5', '1.5', '+5', '5, 10', '0x10', '2099-01-01', '12/31/2099']) t.equal(retryAfterMs(hostile, now), undefined, `'${hostile}' is not a Retry-After`);
  for (let i = 0; i < 50; i++) {
    const b = backoffMs(3, 25, 1000);
    t.ok(b >= 0 && b <= 100);
  }
  t.ok(backoffMs(20, 25, 1000) <= 1000, 'capped');
  const budget = new RetryBudget(0.2, 10, 0);
  let granted = 0;
  for (let i = 0; i < 100; i++) {
    budget.requests += 1;
    if (budget.tryWithdraw(0)) granted += 1;
  }
  t.equal(granted, 30, '10 in reserve plus 20% of 100 requests');
  t.ok(budget.tryWithdraw(1000), 'the reserve refills over time');
  // the README's figure: a long healthy spell banks at most ratio × 100, so a sudden outage gets 30 at once
  const banked = new RetryBudget(0.2, 10, 0);
  banked.requests = 1000;
  let burst = 0;
  for (let i = 0; i < 100; i++) if (banked.tryWithdraw(0)) burst += 1;
  t.equal(burst, 30, 'after 1,000 healthy requests, a burst of failures gets 20 banked plus the reserve of 10');
  // a clock that steps back (the budget's own clock is monotonic; a given one may not be)
  const stepped = new RetryBudget(0, 1, 100_000);
  t.ok(stepped.tryWithdraw(100_000), 'the reserve of 1/s');
  t.notOk(stepped.tryWithdraw(40_000), 'a minute back: nothing refilled');
  t.ok(stepped.tryWithdraw(41_000), 'a second later the reserve has refilled, not a minute later');
  t.equal(appDeadlineMs('100m', undefined), 100);
  t.equal(appDeadlineMs('2S', undefined), 2000);
  t.equal(appDeadlineMs('1H', undefined), 3_600_000);
  t.equal(appDeadlineMs('5000u', undefined), 5);
  t.equal(appDeadlineMs('1n', undefined), 1);
  t.equal(appDeadlineMs(undefined, '250ms'), 250);
  t.equal(appDeadlineMs(undefined, '1.5'), 1500);
  t.equal(appDeadlineMs('1S', '250ms'), 250, 'the shorter wins');
  t.equal(appDeadlineMs('x', 'y'), undefined);
});
