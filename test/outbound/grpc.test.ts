// Interop with a real gRPC stack on both ends: a @grpc/grpc-js client speaking h2c to the
// outbound port, and a grpc-js server behind mutual TLS (our test PKI, the upstream's SPIFFE
// ID) as the upstream. Status codes, messages and trailing metadata must arrive intact.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { makePki, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const raw = (b: Buffer) => b;
const method = (name: string, responseStream = false) => ({
  path: `/meshcar.test.Echo/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
});
const service = { echo: method('Echo'), fail: method('Fail'), count: method('Count', true) };

t.test('gRPC through the outbound side', async (t) => {
  const pki = await makePki(TD);
  const leaf = await pki.issue(UPSTREAM_ID);
  const server = new grpc.Server();
  const callers: string[] = [];
  server.addService(service as unknown as grpc.ServiceDefinition, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      callers.push(String(call.metadata.get('x-request-id')[0] ?? ''));
      const trailer = new grpc.Metadata();
      trailer.set('x-served-by', 'grpc-js');
      callback(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailer);
    },
    fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      callback({ code: grpc.status.NOT_FOUND, details: 'no such charge' });
    },
    count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 1; i <= 3; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(pki.bundlePem), [{ private_key: Buffer.from(leaf.privateKeyPem), cert_chain: Buffer.from(leaf.chainPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${port}`] }]);
  const Client = grpc.makeGenericClientConstructor(service as unknown as grpc.ServiceDefinition, 'Echo');
  const client = new Client(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' }) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  t.teardown(async () => {
    client.close();
    await fx.close();
    server.forceShutdown();
  });

  const unary = (name: string, message: Buffer, metadata = new grpc.Metadata()) =>
    new Promise<{ err: grpc.ServiceError | null; value?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
      let trailers: grpc.Metadata | undefined;
      const call = client[name]?.(message, metadata, (err: grpc.ServiceError | null, value?: Buffer) => setImmediate(() => resolve({ err, value, trailers }))) as grpc.ClientUnaryCall;
      call.on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
    });

  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', 'grpc-1');
  const ok = await unary('echo', Buffer.from('hi'), metadata);
  t.error(ok.err);
  t.equal(ok.value?.toString(), 'echo:hi');
  t.equal(ok.trailers?.get('x-served-by')[0], 'grpc-js', 'trailing metadata arrived');
  t.same(callers, ['grpc-1'], 'the request id crossed');

  const failed = await unary('fail', Buffer.from('x'));
  t.equal(failed.err?.code, grpc.status.NOT_FOUND, 'grpc-status intact');
  t.equal(failed.err?.details, 'no such charge', 'grpc-message intact');

  const counted = await new Promise<string[]>((resolve, reject) => {
    const seen: string[] = [];
    const call = client.count?.(Buffer.from(''), new grpc.Metadata()) as grpc.ClientReadableStream<Buffer>;
    call.on('data', (b: Buffer) => seen.push(b.toString()));
    call.on('end', () => resolve(seen));
    call.on('error', reject);
  });
  t.same(counted, ['1', '2', '3'], 'server streaming');

  const records = await fx.observer.waitForRequests(3);
  t.match(records[0], { peer: 'payments', method: 'POST', path: '/meshcar.test.Echo/Echo', status: 200 });
});
