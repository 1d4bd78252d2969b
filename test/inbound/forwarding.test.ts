// What the app receives and what the caller gets back: x-forwarded-client-cert replaced by
// ours, x-request-id kept or made, hop-by-hop headers dropped both ways; and the sidecar's
// own answers when the app is down, slow, or resets.

import t from 'tap';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { FRONTEND_ID, h1Request, h2Connect, h2Request, SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { appAddressForCallers, classifyAppError } from '../../src/inbound/app-errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function rawExchange(port: number, options: tls.ConnectionOptions, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...options }, () => socket.write(request));
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.setTimeout(3000, () => socket.destroy());
  });
}

t.test('request and response headers', async (t) => {
  const fx = await startInbound({
    app: {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', connection: 'x-private', 'x-private': 'hop', 'keep-alive': 'timeout=5', 'x-app': '1', 'x-meshcar-error': 'upstream_unavailable' });
          res.end(JSON.stringify(req.headers));
        });
      },
    },
  });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const hash = new X509Certificate((await fx.client(FRONTEND_ID)).certificatePem).fingerprint256.replace(/:/g, '').toLowerCase();
  const xfcc = `By=${SERVER_ID};Hash=${hash};URI=${FRONTEND_ID}`;

  t.test('XFCC is ours, in Envoy format; a forged one is removed', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, { headers: { 'x-forwarded-client-cert': `By=spiffe://evil/x;URI=${SERVER_ID}` } });
    const seen = JSON.parse(res.body);
    t.equal(seen['x-forwarded-client-cert'], xfcc);
    t.equal(hash.length, 64);
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = await h2Request(session, { ':path': '/', 'x-forwarded-client-cert': 'forged' });
    t.equal(JSON.parse(h2.body.toString())['x-forwarded-client-cert'], xfcc, 'the same over HTTP/2');
    t.equal(JSON.parse(h2.body.toString()).host, `127.0.0.1:${fx.port}`, ':authority becomes Host for an HTTP/1.1 app');
  });

  t.test('our fields spelt with underscores never reach the app (CGI-style servers would join them to ours); other underscore names do', async (t) => {
    const forged = { x_forwarded_client_cert: `By=${SERVER_ID};URI=spiffe://mesh.test/svc/admin`, X_Request_Id: 'forged-id', x_custom: 'kept' };
    const seen = JSON.parse((await h1Request(fx.port, tlsOptions, { headers: forged })).body) as Record<string, string>;
    t.equal(seen.x_forwarded_client_cert, undefined, 'HTTP/1.1: x_forwarded_client_cert dropped');
    t.equal(seen.x_request_id, undefined, 'HTTP/1.1: X_Request_Id dropped');
    t.equal(seen.x_custom, 'kept', 'HTTP/1.1: another underscore name is forwarded');
    t.equal(seen['x-forwarded-client-cert'], xfcc, 'ours is there');
    // through node:http (a request with Expect takes that path)
    const viaNode = JSON.parse((await h1Request(fx.port, tlsOptions, { method: 'POST', body: 'x', headers: { ...forged, expect: '100-continue' } })).body) as Record<string, string>;
    t.equal(viaNode.x_forwarded_client_cert, undefined, 'node:http path: dropped');
    t.equal(viaNode.x_custom, 'kept');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = JSON.parse((await h2Request(session, { ':path': '/', x_forwarded_client_cert: 'forged', x_request_id: 'forged-id' })).body.toString()) as Record<string, string>;
    t.equal(h2.x_forwarded_client_cert, undefined, 'HTTP/2: dropped');
    t.equal(h2.x_request_id, undefined, 'HTTP/2: dropped');
    t.equal(h2['x-forwarded-client-cert'], xfcc);
  });

  // PHP maps `.` to `_` as it maps `-`, and Caddy's FastCGI passes `.` on: the caller's claim
  // would be read as the same variable as ours (a review)
  t.test('our fields spelt with `.` or another character for `-` never reach the app either', async (t) => {
    const forged = { 'x.forwarded-client-cert': `By=${SERVER_ID};URI=spiffe://mesh.test/svc/admin`, 'x.forwarded.client.cert': 'forged', 'x-forwarded~client-cert': 'forged', 'x.request.id': 'forged-id', 'transfer.encoding': 'chunked', 'x.custom': 'kept' };
    const dropped = ['x.forwarded-client-cert', 'x.forwarded.client.cert', 'x-forwarded~client-cert', 'x.request.id', 'transfer.encoding'];
    const viaList = JSON.parse((await h1Request(fx.port, tlsOptions, { headers: forged })).body) as Record<string, string>;
    for (const name of dropped) t.equal(viaList[name], undefined, `HTTP/1.1: ${name} dropped`);
    t.equal(viaList['x.custom'], 'kept', 'HTTP/1.1: another name with a dot is forwarded');
    t.equal(viaList['x-forwarded-client-cert'], xfcc, 'ours is there');
    const viaNode = JSON.parse((await h1Request(fx.port, tlsOptions, { method: 'POST', body: 'x', headers: { ...forged, expect: '100-continue' } })).body) as Record<string, string>;
    for (const name of dropped) t.equal(viaNode[name], undefined, `node:http path: ${name} dropped`);
    t.equal(viaNode['x.custom'], 'kept');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = JSON.parse((await h2Request(session, { ':path': '/', 'x.forwarded-client-cert': 'forged', 'x-request.id': 'forged-id', 'x.custom': 'kept' })).body.toString()) as Record<string, string>;
    t.equal(h2['x.forwarded-client-cert'], undefined, 'HTTP/2: dropped');
    t.equal(h2['x-request.id'], undefined, 'HTTP/2: dropped');
    t.equal(h2['x.custom'], 'kept');
    t.equal(h2['x-forwarded-client-cert'], xfcc);
  });

  // the same for the framing and connection fields: a CGI-style server reading Transfer_Encoding
  // as Transfer-Encoding would take a body framed by our content-length as chunked
  t.test('framing, connection and body-type fields spelt with underscores never reach the app', async (t) => {
    const spelt = { transfer_encoding: 'chunked', Content_Length: '0', keep_alive: 'timeout=1', proxy_connection: 'close', content_type: 'application/json', Content_Encoding: 'gzip', x_keep: 'kept' };
    const dropped = ['transfer_encoding', 'content_length', 'keep_alive', 'proxy_connection', 'content_type', 'content_encoding'];
    const viaList = JSON.parse((await h1Request(fx.port, tlsOptions, { method: 'POST', body: 'hello', headers: spelt })).body) as Record<string, string>;
    for (const name of dropped) t.equal(viaList[name], undefined, `HTTP/1.1: ${name} dropped`);
    t.equal(viaList.x_keep, 'kept', 'HTTP/1.1: another underscore name is forwarded');
    t.equal(viaList['content-length'], '5', 'our framing is the only one');
    const viaNode = JSON.parse((await h1Request(fx.port, tlsOptions, { method: 'POST', body: 'hello', headers: { ...spelt, expect: '100-continue' } })).body) as Record<string, string>;
    for (const name of dropped) t.equal(viaNode[name], undefined, `node:http path: ${name} dropped`);
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = JSON.parse((await h2Request(session, { ':path': '/', ':method': 'POST', transfer_encoding: 'chunked', content_length: '0', keep_alive: 'x' }, 'hello')).body.toString()) as Record<string, string>;
    for (const name of ['transfer_encoding', 'content_length', 'keep_alive']) t.equal(h2[name], undefined, `HTTP/2: ${name} dropped`);
  });

  t.test('the asterisk target is for OPTIONS alone over HTTP/1.1 too', async (t) => {
    const get = await rawExchange(fx.port, tlsOptions, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    t.match(get, /^HTTP\/1\.1 400 /, 'GET *: 400');
    t.match(get, /is for OPTIONS only/);
    const options = await rawExchange(fx.port, tlsOptions, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    t.match(options, /^HTTP\/1\.1 200 /, 'OPTIONS *: served');
  });

  t.test('x-request-id is kept when given and made when absent', async (t) => {
    const kept = JSON.parse((await h1Request(fx.port, tlsOptions, { headers: { 'x-request-id': 'abc-123' } })).body);
    t.equal(kept['x-request-id'], 'abc-123');
    const made = JSON.parse((await h1Request(fx.port, tlsOptions)).body);
    t.match(made['x-request-id'], UUID);
    const records = fx.observer.requests;
    t.ok(records.some((r) => r.requestId === 'abc-123'), 'the observer sees the same ID');
  });

  t.test('hop-by-hop headers are dropped both ways', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, {
      headers: { connection: 'keep-alive, x-secret', 'x-secret': 'hop', 'keep-alive': 'timeout=9', 'proxy-authorization': 'Basic eA==', te: 'trailers, deflate', 'x-end': 'end' },
    });
    const seen = JSON.parse(res.body);
    t.notOk(seen['x-secret'], 'a header named by Connection');
    t.notOk(seen['proxy-authorization']);
    t.not(seen['keep-alive'], 'timeout=9');
    t.equal(seen['x-end'], 'end', 'end-to-end headers pass');
    t.equal(res.headers['x-app'], '1');
    t.notOk(res.headers['x-private'], 'a response header named by Connection');
    t.not(res.headers['keep-alive'], 'timeout=5', "the app's keep-alive does not leak");
    t.notOk(res.headers['x-meshcar-error'], 'an app cannot pose as a sidecar: its x-meshcar-error is dropped');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    t.notOk((await h2Request(session, { ':path': '/' })).headers['x-meshcar-error'], 'the same over HTTP/2');
  });
});

t.test('the sidecar answers when the app cannot', async (t) => {
  t.test('app down → 503 upstream_unavailable (HTTP/1.1 and HTTP/2)', async (t) => {
    const fx = await startInbound({ appDown: true });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const res = await h1Request(fx.port, tlsOptions, { method: 'POST', body: 'x'.repeat(10_000), headers: { 'x-request-id': 'down-1' } });
    t.equal(res.status, 503);
    t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
    t.equal(res.headers['x-request-id'], 'down-1');
    t.same(JSON.parse(res.body), { error: 'upstream_unavailable', message: JSON.parse(res.body).message, requestId: 'down-1' });
    // whose app: the loopback address the sidecar tried (its app setting), which no caller reaches but through it
    t.equal(JSON.parse(res.body).message, `the app is unreachable at 127.0.0.1:${fx.appPort} (ECONNREFUSED)`, 'the app address tried is named');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = await h2Request(session, { ':path': '/' });
    t.equal(h2.status, 503);
    t.equal(h2.headers['x-meshcar-error'], 'upstream_unavailable');
    t.match(h2.headers['x-request-id'], UUID, 'a made request ID is returned');
    const records = await fx.observer.waitForRequests(2);
    t.same(records.map((r) => [r.status, r.errorCode]), [[503, 'upstream_unavailable'], [503, 'upstream_unavailable']]);
  });

  t.test('h2c app down → 503 upstream_unavailable', async (t) => {
    const fx = await startInbound({ appDown: true, app: { protocol: 'h2c', handler: () => {} } });
    t.teardown(() => fx.close());
    const res = await h1Request(fx.port, await fx.tlsOptions());
    t.equal(res.status, 503);
    t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
    t.equal(JSON.parse(res.body).message, `the app is unreachable at 127.0.0.1:${fx.appPort} (ECONNREFUSED)`, 'the app address tried is named');
  });

  t.test('an app address off loopback is not told to callers (they could try it around the sidecar)', async (t) => {
    t.equal(appAddressForCallers({ host: '::1', port: 8080 }), '[::1]:8080');
    t.equal(appAddressForCallers({ host: 'localhost', port: 8080 }), 'localhost:8080');
    t.equal(appAddressForCallers({ host: '10.0.0.5', port: 8080 }), undefined);
    t.match(classifyAppError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).message, /^the app is unreachable \(ECONNREFUSED; an address off loopback is not told to callers/);
  });

  t.test('slow app → 504 upstream_timeout, and the app request is cancelled', async (t) => {
    let appSawClose = false;
    const fx = await startInbound({
      timeoutMs: 200,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          res.on('close', () => (appSawClose = true));
          // late enough that a bound with room for a TLS handshake on a busy host tells the two apart
          setTimeout(() => res.writeHead(200).end('late'), 5000).unref();
        },
      },
    });
    t.teardown(() => fx.close());
    const started = Date.now();
    const res = await h1Request(fx.port, await fx.tlsOptions());
    t.equal(res.status, 504);
    t.equal(res.headers['x-meshcar-error'], 'upstream_timeout');
    t.ok(Date.now() - started < 3000, 'answered at the timeout, not when the app did');
    await new Promise((r) => setTimeout(r, 50));
    t.ok(appSawClose, 'the request to the app was aborted');
    const [record] = await fx.observer.waitForRequests(1);
    t.equal(record?.errorCode, 'upstream_timeout');
    t.equal(record?.status, 504);
  });

  t.test('slow h2c app → 504 upstream_timeout', async (t) => {
    const fx = await startInbound({ timeoutMs: 200, app: { protocol: 'h2c', handler: () => {} } });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.close());
    const res = await h2Request(session, { ':path': '/' });
    t.equal(res.status, 504);
    t.equal(JSON.parse(res.body.toString()).error, 'upstream_timeout');
  });

  t.test('app resets: before the head → 502 upstream_reset; after it → the caller sees the reset', async (t) => {
    const fx = await startInbound({
      app: {
        protocol: 'http',
        handler: (req, res) => {
          if (req.url === '/before') {
            req.socket.destroy();
            return;
          }
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('partial');
          setTimeout(() => req.socket.destroy(), 50);
        },
      },
    });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const before = await h1Request(fx.port, tlsOptions, { path: '/before' });
    t.equal(before.status, 502);
    t.equal(before.headers['x-meshcar-error'], 'upstream_reset');
    await t.rejects(h1Request(fx.port, tlsOptions, { path: '/after' }), 'HTTP/1.1: the response is cut off, not ended');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = await h2Request(session, { ':path': '/after' });
    t.equal(h2.status, 200);
    t.equal(h2.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, 'HTTP/2: the stream is reset');
    const records = await fx.observer.waitForRequests(3);
    t.same(records.map((r) => r.errorCode), ['upstream_reset', 'reset', 'reset']);
  });

  t.test('a request head that never completes is answered 408 request_timeout (JSON) and closed', async (t) => {
    const fx = await startInbound({ limits: { headersTimeoutMs: 400 } });
    t.teardown(() => fx.close());
    const started = Date.now();
    const text = await rawExchange(fx.port, await fx.tlsOptions(), 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    t.match(text, /^HTTP\/1\.1 408 /);
    t.match(text, /x-meshcar-error: request_timeout/, 'the stable code in the header');
    t.match(text, /"error":"request_timeout"/, 'and the JSON body');
    t.ok(Date.now() - started < 2000, `cut off after ${Date.now() - started} ms`);
  });

  t.test('a malformed request gets 400 bad_request, a CONNECT 400, and the listener keeps serving', async (t) => {
    const fx = await startInbound();
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const text = await rawExchange(fx.port, tlsOptions, 'GARBAGE\x01 / HTTP/9\r\n\r\n');
    t.match(text, /^HTTP\/1\.1 400 /);
    t.match(text, /x-meshcar-error: bad_request/);
    t.match(text, /"error":"bad_request"/);
    const smuggle = await rawExchange(fx.port, tlsOptions, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    t.match(smuggle, /^HTTP\/1\.1 400 /, 'content-length with transfer-encoding is refused');
    const connect = await rawExchange(fx.port, tlsOptions, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nX-Request-Id: tunnel-in-1\r\n\r\n');
    t.match(connect, /^HTTP\/1\.1 400 /, 'CONNECT is answered 400, not dropped');
    t.match(connect, /x-meshcar-error: bad_request/);
    t.match(connect, /"error":"bad_request","message":"CONNECT is not supported/);
    t.match(connect, /"requestId":"tunnel-in-1"/, 'with the request id, as every answer to a request that was read');
    t.same(
      fx.observer.refused.map((r) => [r.method, r.requestId, r.status, r.errorCode, r.peer]),
      [[undefined, undefined, 400, 'bad_request', 'frontend'], [undefined, undefined, 400, 'bad_request', 'frontend'], ['CONNECT', 'tunnel-in-1', 400, 'bad_request', 'frontend']],
      'each refusal is in the access log, the CONNECT with its method and id',
    );
    t.equal((await h1Request(fx.port, tlsOptions)).status, 200, 'still serving');
  });
});
