// What crosses the outbound hop, and how: hop-by-hop headers dropped both ways, x-request-id
// kept or made, bodies streamed (fixed, chunked with trailers, and with backpressure: a slow
// app holds back a fast upstream instead of making us buffer), Expect: 100-continue relayed,
// HEAD/204/304 framed right on a kept-alive connection, trailers back to HTTP/1.1 and h2c
// callers (gRPC's grpc-status intact, trailers-only answers too), and the 16 KiB head limit.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { setTimeout as sleepUnref } from 'node:timers/promises';
import { echo, h2cRequest, makePki, request, sleep, startOutbound, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';

const MB = 1024 * 1024;
let produced = 0; // bytes the upstream's /firehose handed to HTTP/2 so far
let lateRefusals = 0; // streams /refuse-upload-late has reset so far

const handler: H2Handler = (stream, headers) => {
  stream.on('error', () => {});
  const path = String(headers[':path']);
  if (path === '/hop') {
    stream.resume();
    stream.respond({ ':status': 200, 'proxy-authenticate': 'Basic', trailer: 'x-late', 'x-kept': 'yes' }, { endStream: true });
    return;
  }
  if (path === '/continue') {
    // an upstream that wants to see the head before the body
    if (headers.expect === '100-continue') stream.additionalHeaders({ ':status': 100 });
    echo(stream, headers);
    return;
  }
  if (path.startsWith('/status/')) {
    stream.resume();
    const status = Number(path.slice('/status/'.length));
    stream.respond({ ':status': status, etag: '"v1"' }, { endStream: true });
    return;
  }
  if (path === '/head') {
    stream.resume();
    stream.respond({ ':status': 200, 'content-length': 100, 'content-type': 'text/plain' }, { endStream: true });
    return;
  }
  if (path === '/grpc') {
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all good' }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
    return;
  }
  if (path === '/grpc-error') {
    stream.resume();
    // trailers-only: status and grpc-status in one HEADERS frame with END_STREAM
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
    return;
  }
  if (path === '/slow-sink') {
    // reads nothing for a while, then everything: the app must be held back meanwhile
    let consumed = 0;
    stream.pause();
    setTimeout(() => {
      stream.on('data', (c: Buffer) => (consumed += c.length));
      stream.resume();
    }, 400);
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end(String(consumed));
    });
    return;
  }
  if (path === '/refuse-upload') {
    // answers at once, then resets the upload it does not want
    stream.respond({ ':status': 413, 'content-type': 'text/plain' });
    stream.end('too big');
    setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 30);
    return;
  }
  if (path === '/refuse-upload-late') {
    // answers after the first chunk of the upload, then resets the stream and reads no more
    stream.once('data', () => {
      stream.respond({ ':status': 413, 'content-type': 'text/plain' });
      stream.end('too big', () => setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 30));
    });
    stream.once('close', () => lateRefusals++);
    return;
  }
  if (path === '/firehose') {
    stream.resume();
    produced = 0;
    stream.respond({ ':status': 200 });
    const chunk = Buffer.alloc(64 * 1024, 97);
    const pump = () => {
      while (produced < 64 * MB) {
        produced += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
    return;
  }
  echo(stream, headers);
};

t.test('forwarding', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, { handler });
  const fx = await startOutbound(pki, [
    { name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] },
    // the same server under other names: uploads that start before any session exists
    { name: 'sink', endpoints: [`127.0.0.1:${upstream.port}`] },
    { name: 'sink2', endpoints: [`127.0.0.1:${upstream.port}`] },
  ]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });

  t.test('hop-by-hop headers are dropped toward the upstream and back', async (t) => {
    const res = await request(fx.port, {
      headers: { host: 'payments', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5', 'proxy-authorization': 'Basic x', te: 'trailers', 'x-end-to-end': 'kept' },
    });
    t.equal(res.status, 200);
    const seen = res.json().headers;
    for (const name of ['connection', 'x-hop', 'keep-alive', 'proxy-authorization', 'host']) t.notOk(name in seen, `${name} not forwarded`);
    t.equal(seen['x-end-to-end'], 'kept');
    t.equal(seen.te, 'trailers', 'te: trailers survives (gRPC needs it)');
    const back = await request(fx.port, { path: '/hop' });
    t.equal(back.headers['x-kept'], 'yes');
    t.notOk('proxy-authenticate' in back.headers, 'hop-by-hop response header dropped');
    t.notOk('trailer' in back.headers);
  });

  t.test('x-request-id is kept when sent, made when absent', async (t) => {
    const kept = await request(fx.port, { headers: { host: 'payments', 'x-request-id': 'abc-123' } });
    t.equal(kept.json().headers['x-request-id'], 'abc-123');
    const made = await request(fx.port);
    t.match(made.json().headers['x-request-id'], /^[0-9a-f-]{36}$/);
  });

  t.test('fixed-length and chunked bodies, with request trailers', async (t) => {
    const body = Buffer.alloc(3 * MB + 7, 'z');
    const fixed = await request(fx.port, { method: 'POST', body });
    t.equal(fixed.json().bodyLength, body.length, 'a fixed-length body arrives whole');
    t.equal(fixed.json().headers['content-length'], String(body.length));

    const chunked = await new Promise<http.IncomingMessage & { text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'PUT', path: '/echo', headers: { host: 'payments', 'transfer-encoding': 'chunked', trailer: 'x-checksum' }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(Object.assign(res, { text })));
      });
      req.on('error', reject);
      req.write('hello ');
      setTimeout(() => {
        req.write('world');
        // with fields a trailer section may not carry (RFC 9110 §6.5.1), which an upstream that
        // is not meshcar might merge into the head: routing, credentials, framing, control
        req.addTrailers({ 'x-checksum': 'c0ffee', host: 'evil.example', authorization: 'Bearer smuggled', cookie: 'session=victim', 'content-type': 'text/evil', expect: '100-continue', range: 'bytes=0-1' });
        req.end();
      }, 30);
    });
    const seen = JSON.parse(chunked.text);
    t.equal(seen.body, 'hello world', 'chunked body streamed');
    t.same(seen.trailers, { 'x-checksum': 'c0ffee' }, 'its trailers arrive as HTTP/2 trailers, those a trailer section may not carry left out (as from an h2c app)');
  });

  t.test('a slow app holds back a fast upstream: streamed with backpressure, not buffered', async (t) => {
    const hash = createHash('sha256');
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: fx.port, path: '/firehose', headers: { host: 'payments' }, agent: false }, (res) => {
        res.once('data', (c: Buffer) => {
          received += c.length;
          hash.update(c);
          res.pause();
          setTimeout(() => {
            const stalled = produced;
            t.ok(stalled < 16 * MB, `the upstream stalled after ${(stalled / MB).toFixed(1)} MiB of 64 while the app read nothing`);
            res.on('data', (d: Buffer) => {
              received += d.length;
            });
            res.resume();
          }, 400);
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    await done;
    t.equal(received, 64 * MB, 'and then all of it arrived');
  });

  t.test('a slow upstream holds back a fast app: uploads have backpressure too', async (t) => {
    const total = 64 * MB;
    const chunk = Buffer.alloc(64 * 1024, 98);
    const upload = (write: (c: Buffer) => boolean, onDrain: (f: () => void) => void, end: () => void) => {
      let written = 0;
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!write(chunk)) return onDrain(pump);
        }
        end();
      };
      pump();
      return () => written;
    };

    const http1 = await new Promise<{ body: string; stalledAt: number }>((resolve, reject) => {
      let stalledAt = 0;
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/slow-sink', headers: { host: 'sink', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ body, stalledAt }));
      });
      req.on('error', reject);
      const written = upload((c) => req.write(c), (f) => req.once('drain', f), () => req.end());
      setTimeout(() => (stalledAt = written()), 300);
    });
    t.ok(http1.stalledAt < 16 * MB, `HTTP/1.1: the app was held at ${(http1.stalledAt / MB).toFixed(1)} MiB of 64 while the upstream read nothing`);
    t.equal(http1.body, String(total), 'then all of it arrived');

    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.close());
    const h2c = await new Promise<{ body: string; stalledAt: number }>((resolve, reject) => {
      let stalledAt = 0;
      let body = '';
      const stream = session.request({ ':method': 'POST', ':path': '/slow-sink', ':authority': 'sink2' });
      stream.on('data', (c) => (body += c));
      stream.on('end', () => resolve({ body, stalledAt }));
      stream.on('error', reject);
      const written = upload((c) => stream.write(c), (f) => stream.once('drain', f), () => stream.end());
      setTimeout(() => (stalledAt = written()), 300);
    });
    t.ok(h2c.stalledAt < 16 * MB, `h2c: held at ${(h2c.stalledAt / MB).toFixed(1)} MiB`);
    t.equal(h2c.body, String(total));
  });

  t.test('an upstream that answers before the upload ends: the answer arrives whole', async (t) => {
    const big = Buffer.alloc(8 * MB, 99);
    const http1 = await new Promise<{ status: number; body: string; complete: boolean }>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/refuse-upload', headers: { host: 'payments', 'content-length': big.length }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      });
      req.on('error', () => {}); // the rest of the upload may meet a closed connection
      req.end(big);
    });
    t.same(http1, { status: 413, body: 'too big', complete: true }, 'HTTP/1.1');

    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.close());
    const h2c = await new Promise<{ status: number; body: string; rstCode: number | undefined }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/refuse-upload', ':authority': 'payments' });
      let status = 0;
      let body = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c) => (body += c));
      stream.on('error', reject);
      stream.on('close', () => resolve({ status, body, rstCode: stream.rstCode }));
      stream.end(big);
    });
    t.same(h2c, { status: 413, body: 'too big', rstCode: 0 }, 'h2c: the whole answer, and the stream completed normally');
    const refused = () => fx.observer.requests.filter((r) => r.path === '/refuse-upload');
    for (let i = 0; i < 200 && refused().length < 2; i++) await sleep(10);
    const records = refused();
    t.same(records.map((r) => r.errorCode), [undefined, undefined], 'not counted as resets');
  });

  t.test('h2c: an upload that goes on after the upstream answered and reset is read and dropped', async (t) => {
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.close());
    const before = lateRefusals;
    const stream = session.request({ ':method': 'POST', ':path': '/refuse-upload-late', ':authority': 'payments' });
    stream.on('error', () => {});
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c) => (body += c));
    const answered = new Promise<void>((resolve) => stream.once('end', resolve));
    const closed = new Promise<number | undefined>((resolve) => stream.once('close', () => resolve(stream.rstCode)));
    stream.write(Buffer.alloc(16 * 1024, 97));
    await answered;
    t.same({ status, body }, { status: 413, body: 'too big' }, 'the whole answer');
    for (let i = 0; i < 500 && lateRefusals === before; i++) await sleep(10);
    t.equal(lateRefusals, before + 1, 'the upstream has reset its stream');
    // the rest is far more than any flow-control window: unread, it would stall the app's stream
    stream.end(Buffer.alloc(8 * MB, 98));
    // an unref'd cap: a pending 5 s timer would keep this file's process alive once the test is done
    const outcome = await Promise.race([closed, sleepUnref(5_000, undefined, { ref: false }).then(() => 'stalled' as const)]);
    t.equal(outcome, 0, "the app's stream completes normally once its upload is dropped");
  });

  t.test('Expect: 100-continue is relayed', async (t) => {
    const events: string[] = [];
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/continue', headers: { host: 'payments', expect: '100-continue', 'content-length': 4 }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('continue', () => {
        events.push('continue');
        req.end('data');
      });
      req.on('error', reject);
    });
    t.same(events, ['continue'], 'the app got 100 Continue from the upstream');
    t.equal(res.status, 200);
    t.equal(JSON.parse(res.text).body, 'data');
    t.equal(JSON.parse(res.text).headers.expect, '100-continue');

    // an upstream that ignores the expectation: the app is not left waiting forever
    const started = Date.now();
    const ignored = await new Promise<{ status: number; text: string; waited: number }>((resolve, reject) => {
      let waited = 0;
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/echo', headers: { host: 'payments', expect: '100-continue', 'content-length': 4 }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, waited }));
      });
      req.on('continue', () => {
        waited = Date.now() - started;
        req.end('late');
      });
      req.on('error', reject);
    });
    t.equal(ignored.status, 200);
    t.equal(JSON.parse(ignored.text).body, 'late');
    t.ok(ignored.waited >= 900 && ignored.waited < 3000, `the sidecar sent 100 itself after its grace period (${ignored.waited} ms)`);
  });

  t.test('HEAD, 204 and 304 keep HTTP/1.1 framing right on a kept-alive connection', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const head = await request(fx.port, { method: 'HEAD', path: '/head', agent });
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], '100', 'HEAD keeps the content-length');
    t.equal(head.body.length, 0);
    const noContent = await request(fx.port, { path: '/status/204', agent });
    t.equal(noContent.status, 204);
    t.equal(noContent.body.length, 0);
    const notModified = await request(fx.port, { path: '/status/304', agent, headers: { host: 'payments', 'if-none-match': '"v1"' } });
    t.equal(notModified.status, 304);
    t.equal(notModified.headers.etag, '"v1"');
    const after = await request(fx.port, { path: '/echo', agent });
    t.equal(after.status, 200, 'the connection is still in step');
    t.equal(Object.keys(agent.freeSockets).length + Object.keys(agent.sockets).length, 1, 'one connection for all four');
  });

  t.test('response trailers reach an HTTP/1.1 app on a chunked response', async (t) => {
    const res = await request(fx.port, { path: '/grpc' });
    t.equal(res.status, 200);
    t.equal(res.headers['transfer-encoding'], 'chunked');
    t.equal(res.trailers['grpc-status'], '0');
    t.equal(res.trailers['grpc-message'], 'all good');
  });

  t.test('h2c app on the same port: trailers both ways, trailers-only answers intact', async (t) => {
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.close());
    const grpc = await h2cRequest(session, { ':method': 'POST', ':path': '/grpc', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    t.equal(grpc.status, 200);
    t.equal(grpc.headers['content-type'], 'application/grpc');
    t.same([...grpc.body], [0, 0, 0, 0, 2, 8, 1], 'the message');
    t.equal(grpc.trailers?.['grpc-status'], '0', 'grpc-status arrives as a trailer');
    t.equal(grpc.trailers?.['grpc-message'], 'all good');

    const only = await h2cRequest(session, { ':method': 'POST', ':path': '/grpc-error', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    t.equal(only.headers['grpc-status'], '5', 'trailers-only: grpc-status in the single HEADERS frame');
    t.equal(only.body.length, 0);

    const echoed = await h2cRequest(session, { ':method': 'POST', ':path': '/echo' }, 'payload', { 'x-req-trailer': 'yes' });
    const seen = JSON.parse(echoed.body.toString());
    t.equal(seen.body, 'payload');
    t.equal(seen.trailers['x-req-trailer'], 'yes', 'request trailers from an h2c app reach the upstream');
    t.equal(echoed.trailers, undefined, 'no trailers invented when the upstream sent none');

    const head = await h2cRequest(session, { ':method': 'HEAD', ':path': '/head' });
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], '100');
    t.equal(head.body.length, 0);

    // and HTTP/1.1 still works on the same port
    t.equal((await request(fx.port)).status, 200);
  });

  t.test('a request head over 16 KiB gets 431; the listener keeps serving', async (t) => {
    const huge = await request(fx.port, { headers: { host: 'payments', 'x-big': 'y'.repeat(20_000) } });
    t.equal(huge.status, 431);
    const fine = await request(fx.port, { headers: { host: 'payments', 'x-big': 'y'.repeat(8_000) } });
    t.equal(fine.status, 200, 'a large head under the limit passes');
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.destroy());
    session.on('error', () => {});
    // the limit applies once the client has acknowledged our SETTINGS: after a first exchange
    t.equal((await h2cRequest(session, { ':path': '/echo' })).status, 200);
    const upstreamBefore = upstream.requests;
    const refused = await h2cRequest(session, { ':path': '/echo', 'x-big': 'y'.repeat(20_000) }).then(
      (r) => `status ${r.status}`,
      (err: NodeJS.ErrnoException) => `${err.code}: ${err.message}`,
    );
    // 64 KiB advertised (Node would reset a head over it unanswered): our own 431 under it
    t.equal(refused, 'status 431', 'h2c: over 16 KiB, within the 64 KiB advertised: our 431');
    t.equal(upstream.requests, upstreamBefore, 'and nothing went upstream');
    t.equal((await h2cRequest(session, { ':path': '/echo' })).status, 200, 'the session still serves');
  });
});
