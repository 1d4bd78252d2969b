// The rapid-reset guard and a gRPC app that cancels calls it already has answers for: 300
// server streams, each answered (head and a first message), cancelled together by the client.
// The calling sidecar passes each cancellation on as RST_STREAM CANCEL; the inbound must not
// take them for rapid reset (CVE-2023-44487 counts resets of streams not yet answered, as
// Envoy's premature-reset check), or it closes the caller's connection with GOAWAY
// ENHANCE_YOUR_CALM and cuts the unrelated long stream on it. Runs on the default codec;
// codec-node-grpc-cancel-answered.test.ts re-runs it on http2.codec node.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { metricValue, startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const streamOf = (path: string) => ({ path, requestStream: false, responseStream: true, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize });
const SERVICE: grpc.ServiceDefinition = { Long: streamOf('/meshcar.test.S/Long'), Hold: streamOf('/meshcar.test.S/Hold') };
const HELD = 300;

let ca: MeshCa;
let server: grpc.Server;
let callee: RunningSidecar;
let caller: RunningSidecar;
let client: grpc.Client & Record<string, (req: Buffer) => grpc.ClientReadableStream<Buffer>>;
let holdCancelled = 0;
/** Set by the test: the long stream's server ends it (with status OK) at its next tick. */
let finishLong = false;

t.before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    // a message every 50 ms until told to finish
    Long: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const timer = setInterval(() => {
        if (finishLong) {
          clearInterval(timer);
          call.end();
        } else call.write(Buffer.from('tick'));
      }, 50);
      call.on('cancelled', () => clearInterval(timer));
    },
    // answered at once (head and one message), then held open until cancelled
    Hold: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      call.on('cancelled', () => holdCancelled++);
      call.write(Buffer.from('first'));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
  ca = await startMeshCa(t.testdir());
  callee = await startSidecar(ca, { service: 'callee', inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '30s' } });
  caller = await startSidecar(ca, { service: 'caller', upstreams: [{ name: 'callee', endpoints: [`127.0.0.1:${callee.inboundPort}`], identity: 'spiffe://mesh.local/svc/callee', timeout: '30s' }] });
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'S');
  client = new Client(`127.0.0.1:${caller.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'callee' }) as typeof client;
});

t.teardown(async () => {
  client?.close();
  await Promise.all([caller?.stop('SIGKILL'), callee?.stop('SIGKILL')]);
  await ca?.stop();
  server?.forceShutdown();
});

t.test('300 answered streams cancelled together: no rapid reset, the long stream on the same connection finishes', async (t) => {
  const long = client.Long(Buffer.from('x'));
  let ticks = 0;
  const longEnd = new Promise<string>((resolve) => {
    long.on('data', () => ticks++);
    long.on('error', (err: grpc.ServiceError) => resolve(`code ${err.code}: ${err.details}`));
    long.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve('ok');
    });
  });
  await waitFor(async () => ticks > 0, 10_000, 'the long stream’s first message');

  const held = await Promise.all(
    Array.from({ length: HELD }, () => {
      const call = client.Hold(Buffer.from('x'));
      call.on('error', () => {}); // CANCELLED, our own
      return new Promise<grpc.ClientReadableStream<Buffer>>((resolve) => call.once('data', () => resolve(call)));
    }),
  );
  for (const call of held) call.cancel();
  await waitFor(async () => holdCancelled === HELD, 15_000, `the app saw the ${HELD} cancellations (${holdCancelled})`);

  // the guard would have fired by now; then the long stream would be cut within a second:
  // it must go on for longer than that (20 more messages, a second at 50 ms)
  const seen = ticks;
  let failed = '';
  void longEnd.then((how) => (failed = how));
  await waitFor(async () => ticks >= seen + 20 || failed !== '', 15_000, 'the long stream going on after the cancellations');
  t.equal(failed, '', 'the long stream was not cut');
  finishLong = true;
  t.equal(await longEnd, 'ok', 'the long stream finishes with status OK');

  const metrics = (await callee.admin('/metrics')).body;
  t.equal(metricValue(metrics, 'meshcar_http2_sessions_closed_total{direction="inbound",reason="rapid_reset"}') ?? 0, 0, 'no session closed for rapid reset');
});
