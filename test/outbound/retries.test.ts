// Safe retries, what is retried: only idempotent requests (or ones with an Idempotency-Key),
// only before any of the response reached the app, on connect failures, resets, 503 and 429,
// within the app's deadline; bodies replayed whole or, past the buffer limit, not retried.
// Real mTLS upstreams on loopback, counting what they saw. The budget, Retry-After and the
// spread over endpoints are in retry-timing.test.ts.

import t from 'tap';
import http2 from 'node:http2';
import { request as httpRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { defaultHandler, echo, makePki, request, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { flaky, h2, startRetryOutbound as start, within } from '../helpers/retry-fixture.js';

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

t.test('a retry rewrites only the deadline field the sidecar could read: one it could not goes on as the app sent it (both codecs)', async (t) => {
  // `1x` or `0` beside a readable x-request-timeout went on to the retry as the readable one's time left
  for (const codec of ['node', 'meshcar'] as const) {
    const pki = await makePki(TD);
    const seen: Array<{ grpc: unknown; own: unknown }> = [];
    const first = flaky(100, 503);
    const up = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        seen.push({ grpc: headers['grpc-timeout'], own: headers['x-request-timeout'] });
        if (seen.length % 2 === 1) first(stream, headers, flags);
        else echo(stream, headers, flags);
      },
    });
    t.teardown(() => up.close());
    const fx = await start(t, pki, { endpoints: [up.port], codec });
    for (const [grpc, own, readable] of [['1x', '3s', 'own'], ['0', '3s', 'own'], ['2S', '-1', 'grpc'], ['2S', 'soon', 'grpc']] as const) {
      seen.length = 0;
      const res = await request(fx.port, { headers: { 'grpc-timeout': grpc, 'x-request-timeout': own } });
      t.equal(res.status, 200, `${codec} ${grpc}/${own}: retried to success`);
      t.equal(seen.length, 2);
      const retry = seen[1];
      if (readable === 'own') {
        t.equal(retry?.grpc, grpc, `${codec}: the unreadable grpc-timeout ${grpc} goes on as sent`);
        t.match(String(retry?.own), /^\d+ms$/, `${codec}: x-request-timeout says the time left (${String(retry?.own)})`);
      } else {
        t.equal(retry?.own, own, `${codec}: the unreadable x-request-timeout ${own} goes on as sent`);
        t.match(String(retry?.grpc), /^\d+m$/, `${codec}: grpc-timeout says the time left (${String(retry?.grpc)})`);
      }
    }
  }
});

t.test('a long deadline passed on by a retry keeps to the 8 digits of grpc-timeout, in a larger unit', async (t) => {
  // 99999999H (the longest gRPC allows) went on as 359999996400S, which the far side dropped
  const pki = await makePki(TD);
  const seen: unknown[] = [];
  const first = flaky(100, 503);
  const up = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      seen.push(headers['grpc-timeout']);
      // the first attempt of each request a 503, the retry answered
      if (seen.length % 2 === 1) first(stream, headers, flags);
      else echo(stream, headers, flags);
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 0 });
  for (const [sent, unit] of [['99999999H', 'H'], ['2000000H', 'H'], ['99999999M', 'M'], ['99999999S', 'S']] as const) {
    seen.length = 0;
    const res = await request(fx.port, { headers: { 'grpc-timeout': sent } });
    t.equal(res.status, 200, `${sent}: retried to success`);
    const retry = String(seen[1]);
    t.match(retry, new RegExp(`^\\d{1,8}${unit}$`), `${sent}: the retry carries ${retry}, at most 8 digits`);
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

  // an empty key (or blanks) names no operation the app could recognise a second time: the
  // POST stays once-only
  for (const blank of ['', '   ']) {
    const up3 = await startUpstream(pki, { handler: flaky(1, 503) });
    t.teardown(() => up3.close());
    const fx3 = await start(t, pki, { endpoints: [up3.port] });
    const empty = await request(fx3.port, { method: 'POST', body: 'charge me once', headers: { 'idempotency-key': blank } });
    t.equal(empty.status, 503, `Idempotency-Key '${blank}': the 503 goes back to the app`);
    t.equal(up3.requests, 1, `Idempotency-Key '${blank}': the upstream saw it once`);
  }
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
