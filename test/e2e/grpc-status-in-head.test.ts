// Whole mesh: a gRPC answer whose first HEADERS carry grpc-status without ending the stream (an
// app out of the protocol: grpc-status 0 in its head, a message, then grpc-status 13 in its
// trailers). The call's status is the trailers' (what grpc-js reads): both sidecars count
// INTERNAL, and the outbound judges the endpoint by it. They counted OK, and the endpoint's
// health took the call as a success (the gRPC review).

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { metricValue, startMeshCa, startSidecar, waitFor } from '../helpers/mesh.js';

const raw = (b: Buffer) => b;
const SERVICE: grpc.ServiceDefinition = {
  Get: { path: '/meshcar.test.Shop/Get', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
};

t.test('grpc-status in a head with more to come is not the call status: the trailers are', async (t) => {
  // the app: an h2c server written by hand, as no gRPC library sends this
  const app = http2.createServer();
  app.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '13', 'grpc-message': 'boom' }));
      const message = Buffer.from('here');
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(message.length, 1);
      stream.end(Buffer.concat([frame, message]));
    });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const ca = await startMeshCa(t.testdir());
  t.teardown(() => ca.stop());
  const shop = await startSidecar(ca, { service: 'shop', inbound: { app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` } });
  t.teardown(() => shop.stop('SIGKILL'));
  const frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'shop', endpoints: [`127.0.0.1:${shop.inboundPort}`], identity: 'spiffe://mesh.local/svc/shop', timeout: '5s\n      retries: {attempts: 0}' }] });
  t.teardown(() => frontend.stop('SIGKILL'));

  const Ctor = grpc.makeGenericClientConstructor(SERVICE, 'Shop');
  const client = new Ctor(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'shop' }) as grpc.Client & { Get: (req: Buffer, cb: (err: grpc.ServiceError | null) => void) => void };
  t.teardown(() => client.close());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => client.Get(Buffer.from('x'), resolve));
  t.equal(err?.code, grpc.status.INTERNAL, 'the client reads the trailers: INTERNAL');

  const series = (direction: string, peer: string, code: string) => `meshcar_grpc_responses_total{direction="${direction}",peer="${peer}",route="/meshcar.test.Shop/Get",grpc_code="${code}"}`;
  for (const [who, sidecar, direction, peer] of [['frontend', frontend, 'outbound', 'shop'], ['shop', shop, 'inbound', 'frontend']] as const) {
    let page = '';
    await waitFor(async () => metricValue((page = (await sidecar.admin('/metrics')).body), series(direction, peer, 'INTERNAL')) === 1, 5_000, `${who}: the call counted`);
    t.equal(metricValue(page, series(direction, peer, 'INTERNAL')), 1, `${who}: INTERNAL`);
    t.equal(metricValue(page, series(direction, peer, 'OK')), undefined, `${who}: no OK`);
  }
  const view = JSON.parse((await frontend.admin('/upstreams')).body) as { upstreams: Array<{ name: string; addresses: Array<{ failures: number }> }> };
  t.equal(view.upstreams.find((u) => u.name === 'shop')?.addresses[0]?.failures, 1, 'the endpoint judged by the trailers: one failure');
});
