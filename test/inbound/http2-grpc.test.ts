// HTTP/2 callers to an h2c app: trailers and grpc-status intact (a trailers-only answer stays
// one HEADERS frame with END_STREAM), a real gRPC client and server (grpc-js) through the
// sidecar, and an HTTP/1.1 caller to the same h2c app.

import t from 'tap';
import http2 from 'node:http2';
import grpc from '@grpc/grpc-js';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

t.test('HTTP/2 caller → h2c app', async (t) => {
  const fx = await startInbound({
    app: {
      protocol: 'h2c',
      handler: (stream, headers) => {
        const path = headers[':path'];
        if (path === '/trailers-only') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not here' }, { endStream: true });
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-seen-xfcc': String(headers['x-forwarded-client-cert']), 'x-seen-te': String(headers.te) }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine', 'x-echo-bytes': String(Buffer.concat(chunks).length) }));
          stream.end(Buffer.concat(chunks));
        });
      },
    },
  });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());

  t.test('body, headers and trailers pass through', async (t) => {
    const res = await h2Request(session, { ':method': 'POST', ':path': '/svc/Method', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from('grpc-frame'));
    t.equal(res.status, 200);
    t.equal(res.body.toString(), 'grpc-frame');
    t.match(res.headers['x-seen-xfcc'], /^By=spiffe:\/\/mesh\.test\/svc\/orders;Hash=[0-9a-f]{64};URI=spiffe:\/\/mesh\.test\/svc\/frontend$/);
    t.equal(res.headers['x-seen-te'], 'trailers', 'te: trailers reaches the app');
    t.same({ status: res.trailers?.['grpc-status'], message: res.trailers?.['grpc-message'], bytes: res.trailers?.['x-echo-bytes'] }, { status: '0', message: 'fine', bytes: '10' });
  });

  t.test('a trailers-only answer stays trailers-only', async (t) => {
    const res = await h2Request(session, { ':method': 'POST', ':path': '/trailers-only', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from('x'));
    t.equal(res.headers['grpc-status'], '5');
    t.ok(res.flags & NGHTTP2_FLAG_END_STREAM, 'the HEADERS frame ends the stream');
    t.equal(res.trailers, undefined);
  });

  t.test('an HTTP/1.1 caller reaches the h2c app and gets its trailers', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, { method: 'POST', path: '/svc/Method', body: 'hello', headers: { te: 'trailers' } });
    t.equal(res.status, 200);
    t.equal(res.body, 'hello');
    t.equal(res.trailers['grpc-status'], '0');
  });

  t.test('many concurrent streams over one session', async (t) => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => h2Request(session, { ':method': 'POST', ':path': `/n/${i}` }, Buffer.from(`n${i}`))));
    t.same(results.map((r) => r.body.toString()), Array.from({ length: 50 }, (_, i) => `n${i}`));
  });
});

t.test('a real gRPC client and server through the sidecar', async (t) => {
  const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
  const service = {
    Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, ...raw },
    Fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, ...raw },
    Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, ...raw },
  };
  const server = new grpc.Server();
  server.addService(service, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-peer', String(call.metadata.get('x-forwarded-client-cert')[0] ?? 'none'));
      done(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailer);
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => done({ code: grpc.status.NOT_FOUND, details: 'no such order' }),
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 1; i <= 3; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  t.teardown(() => server.forceShutdown());
  const fx = await startInbound({ externalApp: { protocol: 'h2c', port: appPort } });
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(
    `127.0.0.1:${fx.port}`,
    grpc.credentials.createSsl(Buffer.from(fx.pki.bundlePem), Buffer.from(leaf.privateKeyPem), Buffer.from(leaf.chainPem), { checkServerIdentity: () => undefined }),
    // a name, not the IP, in SNI (RFC 6066); the server is checked by the bundle only here
    { 'grpc.ssl_target_name_override': 'orders' },
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  t.teardown(() => client.close());

  const unary = (method: string, request: Buffer) =>
    new Promise<{ err: grpc.ServiceError | null; value?: Buffer; trailer?: grpc.Metadata }>((resolve) => {
      let trailer: grpc.Metadata | undefined;
      const call = client[method]?.(request, (err: grpc.ServiceError | null, value?: Buffer) => setImmediate(() => resolve({ err, ...(value ? { value } : {}), ...(trailer ? { trailer } : {}) }))) as grpc.ClientUnaryCall;
      call.on('status', (status: grpc.StatusObject) => (trailer = status.metadata));
    });

  const ok = await unary('Echo', Buffer.from('hi'));
  t.error(ok.err);
  t.equal(ok.value?.toString(), 'echo:hi');
  t.match(String(ok.trailer?.get('x-peer')[0]), /URI=spiffe:\/\/mesh\.test\/svc\/frontend$/, 'trailing metadata (and XFCC) made it');

  const failed = await unary('Fail', Buffer.from('x'));
  t.equal(failed.err?.code, grpc.status.NOT_FOUND, 'the status code survives');
  t.equal(failed.err?.details, 'no such order');

  const streamed = await new Promise<string[]>((resolve, reject) => {
    const out: string[] = [];
    const call = client.Count?.(Buffer.from('')) as grpc.ClientReadableStream<Buffer>;
    call.on('data', (b: Buffer) => out.push(b.toString()));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
  t.same(streamed, ['1', '2', '3'], 'server streaming');
  const records = await fx.observer.waitForRequests(3);
  t.same(records.slice(0, 3).map((r) => [r.method, r.path, r.status]), [
    ['POST', '/test.Echo/Echo', 200],
    ['POST', '/test.Echo/Fail', 200],
    ['POST', '/test.Echo/Count', 200],
  ]);
});
