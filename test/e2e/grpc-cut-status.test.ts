// A gRPC server stream cut mid-way by the mesh, not by the client: the client must not read
// CANCELLED (code 1 tells it that it cancelled the call itself, so a watch loop would not
// reconnect). The inbound sidecar dies (SIGKILL) or ends its drain (SIGTERM, short
// drainTimeout) with a stream open: Node's codec marks the calling sidecar's upstream streams
// CANCEL when the socket closes, and that code must not be passed on to the app as if the peer
// had reset the stream. The calling sidecar ends the cut answer with trailers instead:
// UNAVAILABLE and x-meshcar-error upstream_reset (a drain that runs out ends the call with
// its own UNAVAILABLE, upstream_unavailable, which the calling sidecar relays). Runs on the default codec;
// codec-node-grpc-cut-status.test.ts re-runs it on http2.codec node.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const SERVICE: grpc.ServiceDefinition = {
  Watch: { path: '/meshcar.test.W/Watch', requestStream: false, responseStream: true, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
};

let ca: MeshCa;
let server: grpc.Server;
let killed: RunningSidecar;
let drained: RunningSidecar;
let caller: RunningSidecar;
const clients: grpc.Client[] = [];

t.before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    // a message every 100 ms until the call is cancelled
    Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const timer = setInterval(() => call.write(Buffer.from('tick')), 100);
      call.on('cancelled', () => clearInterval(timer));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
  ca = await startMeshCa(t.testdir());
  killed = await startSidecar(ca, { service: 'killed', inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '30s' } });
  drained = await startSidecar(ca, { service: 'drained', drainTimeout: '1s', inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '30s' } });
  caller = await startSidecar(ca, {
    service: 'caller',
    upstreams: [
      { name: 'killed', endpoints: [`127.0.0.1:${killed.inboundPort}`], identity: 'spiffe://mesh.local/svc/killed', timeout: '30s' },
      { name: 'drained', endpoints: [`127.0.0.1:${drained.inboundPort}`], identity: 'spiffe://mesh.local/svc/drained', timeout: '30s' },
    ],
  });
});

t.teardown(async () => {
  for (const c of clients) c.close();
  await Promise.all([caller?.stop('SIGKILL'), killed?.stop('SIGKILL'), drained?.stop('SIGKILL')]);
  await ca?.stop();
  server?.forceShutdown();
});

/** A Watch call through the caller's sidecar, resolved once its first message arrived; `end` settles with its error. */
async function openWatch(authority: string): Promise<{ end: Promise<grpc.ServiceError | 'ok'> }> {
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'W');
  const client = new Client(`127.0.0.1:${caller.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  clients.push(client);
  const call = (client as unknown as { Watch: (req: Buffer) => grpc.ClientReadableStream<Buffer> }).Watch(Buffer.from('x'));
  const end = new Promise<grpc.ServiceError | 'ok'>((resolve) => {
    call.on('error', (err: grpc.ServiceError) => resolve(err));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve('ok');
    });
  });
  await new Promise<void>((resolve) => call.once('data', () => resolve()));
  return { end };
}

function withinMs<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_resolve, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())]);
}

function meshcarErrorOf(err: grpc.ServiceError | 'ok'): unknown {
  return err === 'ok' ? undefined : err.metadata?.get('x-meshcar-error')[0];
}

t.test('the inbound sidecar is killed mid-stream: UNAVAILABLE, never CANCELLED', async (t) => {
  const { end } = await openWatch('killed');
  await killed.stop('SIGKILL');
  const err = await withinMs(10_000, end, 'the watch after the kill');
  t.not(err, 'ok', 'the stream did not end as if whole');
  const code = err === 'ok' ? -1 : err.code;
  t.not(code, grpc.status.CANCELLED, `not CANCELLED (${err === 'ok' ? 'ok' : `${err.code} ${err.details}`})`);
  t.equal(code, grpc.status.UNAVAILABLE, 'UNAVAILABLE, in the trailers the calling sidecar ended the answer with');
  t.equal(meshcarErrorOf(err), 'upstream_reset', 'with x-meshcar-error');
});

t.test('the inbound sidecar ends its drain with a stream open: UNAVAILABLE, never CANCELLED', async (t) => {
  const { end } = await openWatch('drained');
  const exited = drained.stop('SIGTERM');
  const err = await withinMs(10_000, end, 'the watch at the end of the drain');
  await exited;
  const code = err === 'ok' ? -1 : err.code;
  t.not(code, grpc.status.CANCELLED, `not CANCELLED (${err === 'ok' ? 'ok' : `${err.code} ${err.details}`})`);
  t.equal(code, grpc.status.UNAVAILABLE, 'UNAVAILABLE, in the trailers the draining sidecar ended the answer with');
  // the drain's own status (inbound/drain-grpc.ts), relayed by the calling sidecar
  t.equal(meshcarErrorOf(err), 'upstream_unavailable', 'with x-meshcar-error');
});
