// Whose fault an upload cut by the idle timeout is. An app that stops sending its body midway
// (a Content-Length it never fills) gets 408 request_timeout and the connection closed, and the
// endpoint is not blamed: before, each was a 504 upstream_timeout counted against it, and an app
// abandoning uploads got a healthy endpoint ejected. An upstream that keeps its flow-control
// window shut, so the upload cannot go on (2 MiB held back, or 5 bytes that never got a window),
// is still the upstream stalling: 504; so is one that leaves an app waiting for its 100 Continue
// (the app sends nothing until it comes), or whose path takes no more bytes (a small upload
// queued on the session's socket behind a large one). Both codecs, a real upstream (Node's
// HTTP/2 server over mutual TLS), raw sockets for the stalling app.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { defaultHandler, makePki, request, sleep, startUpstream } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { rawTcpRequest } from '../helpers/raw-http.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const pki = await makePki();
    const upstream = await startUpstream(pki, {
      handler: (stream, headers, flags) => {
        if (headers[':path'] !== '/hold') return defaultHandler(stream, headers, flags);
        // never read, never answered: its window shuts once the first 64 KiB are in
        stream.on('error', () => {});
        stream.pause();
      },
    });
    const fx = await startBalanced(pki, {
      codec,
      ports: [upstream.port],
      idleTimeoutMs: 400,
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectionMs: 30_000, maxEjectionPercent: 100 },
    });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });

    for (let i = 1; i <= 3; i++) {
      const res = await rawTcpRequest(fx.port, 'POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\n\r\nhello');
      t.equal(res.status, 408, `stalled upload ${i}: 408`);
      t.match(JSON.parse(res.body), { error: 'request_timeout', message: /none of the rest of its request body for 400 ms/ });
      t.equal(res.headers.connection, 'close', `stalled upload ${i}: the connection goes`);
    }
    // Expect: 100-continue, but the body's start sent at once: the app is not waiting for a 100
    const eager = await rawTcpRequest(fx.port, 'PUT /upload HTTP/1.1\r\nHost: payments\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\nhello');
    t.equal(eager.status, 408, 'an Expect request whose body started at once, then stalled: 408 too');
    t.equal(fx.observer.ejections, 0, 'the endpoint is not ejected (2 failures would have)');
    t.equal((await request(fx.port, { path: '/echo' })).status, 200, 'and still serves');

    // 2 MiB toward an upstream that reads none of it: the app's writes wait on the upstream
    const held = await new Promise<{ status: number; error: string | undefined }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: '/hold', headers: { host: 'payments', 'content-length': String(2 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, error: res.headers['x-meshcar-error'] as string | undefined });
      });
      req.on('error', reject);
      req.end(Buffer.alloc(2 * 1024 * 1024, 0x61));
    });
    t.same(held, { status: 504, error: 'upstream_timeout' }, 'an upload the upstream holds back: 504, the upstream stalling');

    // Expect: 100-continue, and neither the upstream's 100 nor an answer: our own 100 comes after
    // min(1 s, timeout / 2), past the idle timeout, and the app rightly waits for it
    const expecting = await new Promise<{ status: number; error: string | undefined }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'PUT', path: '/hold', headers: { host: 'payments', expect: '100-continue', 'content-length': '5' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, error: res.headers['x-meshcar-error'] as string | undefined });
      });
      req.on('continue', () => req.end('hello'));
      req.on('error', reject);
    });
    t.same(expecting, { status: 504, error: 'upstream_timeout' }, 'an app waiting for its 100 Continue: 504, not its stall');
  });

  t.test(`codec ${codec}: a path to the upstream that takes no more bytes`, async (t) => {
    const pki = await makePki();
    let received = 0;
    const upstream = await startUpstream(pki, {
      // windows wide open: only TCP holds the bytes back
      settings: { initialWindowSize: 64 * 1024 * 1024 },
      handler: (stream, headers, flags) => {
        if (headers[':path'] === '/echo') return defaultHandler(stream, headers, flags);
        stream.on('error', () => {});
        stream.on('data', (chunk: Buffer) => {
          if (headers[':path'] === '/small') received += chunk.length;
        });
      },
    });
    upstream.server.on('session', (session) => session.setLocalWindowSize(256 * 1024 * 1024));
    // a relay whose sockets stop reading on freeze(): the session's path takes no more bytes
    const held: net.Socket[] = [];
    const relay = net.createServer((app) => {
      const up = net.connect(upstream.port, '127.0.0.1');
      held.push(app, up);
      app.pipe(up).on('error', () => {});
      up.pipe(app).on('error', () => {});
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    const fx = await startBalanced(pki, { codec, ports: [(relay.address() as net.AddressInfo).port], idleTimeoutMs: 1500, timeoutMs: 30_000 });
    t.teardown(async () => {
      for (const socket of held) socket.destroy();
      relay.close();
      await fx.close();
      await upstream.close();
    });
    t.equal((await request(fx.port, { path: '/echo' })).status, 200, 'the session is up');
    for (const socket of held) socket.pause();
    // a large upload on the same session until nothing more goes: the app's writes wait 500 ms
    const big = net.connect(fx.port, '127.0.0.1');
    big.on('error', () => {});
    t.teardown(() => big.destroy());
    await once(big, 'connect');
    big.write(`POST /big HTTP/1.1\r\nHost: payments\r\nContent-Length: ${256 * 1024 * 1024}\r\n\r\n`);
    let stuck = false;
    for (const until = Date.now() + 10_000; !stuck && Date.now() < until; ) {
      if (!big.write(Buffer.alloc(64 * 1024, 0x61))) stuck = (await Promise.race([once(big, 'drain').then(() => false), sleep(500).then(() => true)])) as boolean;
    }
    t.ok(stuck, 'everything below the app is full');
    // 5 bytes of a 100-byte upload, queued behind it on the session
    const res = await rawTcpRequest(fx.port, 'POST /small HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\n\r\nhello');
    t.equal(res.status, 504, '504: the path stalled the upload, not the app');
    t.equal(received, 0, 'none of it reached the upstream');
  });

  t.test(`codec ${codec}: an upstream that gives no flow-control window`, async (t) => {
    const pki = await makePki();
    let received = 0;
    const upstream = await startUpstream(pki, {
      settings: { initialWindowSize: 0 },
      handler: (stream) => {
        stream.on('error', () => {});
        stream.on('data', (chunk: Buffer) => (received += chunk.length));
      },
    });
    const fx = await startBalanced(pki, { codec, ports: [upstream.port], idleTimeoutMs: 400 });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    // 5 bytes, far under any write buffer's high-water mark, queued on the stream for want of window
    const res = await rawTcpRequest(fx.port, 'POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: 100\r\n\r\nhello');
    t.equal(res.status, 504, '504: the upstream stalled the upload');
    t.equal(res.headers['x-meshcar-error'], 'upstream_timeout');
    t.equal(received, 0, 'none of it reached the upstream');
  });
}
