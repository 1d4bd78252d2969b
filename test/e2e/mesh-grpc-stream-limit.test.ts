// Whole mesh, gRPC, an app that limits its concurrent streams (grpc-js with
// grpc.max_concurrent_streams: 10, as Go's x/net/http2 server limits to 250): 60 concurrent
// unary calls through both sidecars all succeed, cold and then warm, the app never seeing more
// than its 10 at once over few connections. Before, 40-50 of 60 failed UNAVAILABLE
// (upstream_reset): the inbound sent the burst before the app's SETTINGS and did not replay
// the refused streams (gRPC always has a body). Both codecs of the sidecars.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { LIMIT_SERVICE, limitedGrpcApp } from '../helpers/limited-grpc-app.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: 60 concurrent calls to an app allowing 10 streams`, async (t) => {
    const { port, stats, close } = await limitedGrpcApp();
    t.teardown(close);
    const ca: MeshCa = await startMeshCa(t.testdir());
    t.teardown(() => ca.stop());
    const inbound: RunningSidecar = await startSidecar(ca, { service: 'limited', codec, inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '30s' } });
    t.teardown(() => inbound.stop('SIGKILL'));
    const outbound: RunningSidecar = await startSidecar(ca, {
      service: 'caller',
      codec,
      upstreams: [{ name: 'limited', endpoints: [`127.0.0.1:${inbound.inboundPort}`], identity: 'spiffe://mesh.local/svc/limited', timeout: '30s' }],
    });
    t.teardown(() => outbound.stop('SIGKILL'));
    const Client = grpc.makeGenericClientConstructor(LIMIT_SERVICE, 'Limit');
    const client = new Client(`127.0.0.1:${outbound.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'limited' }) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
    t.teardown(() => client.close());
    const body = Buffer.alloc(4096, 5);
    for (const round of ['cold', 'warm']) {
      const started = Date.now();
      const results = await Promise.all(
        Array.from(
          { length: 60 },
          () =>
            new Promise<string>((resolve) =>
              client.Slow?.(body, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, value?: Buffer) =>
                resolve(err ? `code=${err.code} ${err.details} ${String(err.metadata?.get('x-meshcar-error'))}` : value?.toString() === `got ${body.length}` ? 'ok' : `wrong answer ${String(value)}`),
              ),
          ),
        ),
      );
      const bad = results.filter((r) => r !== 'ok');
      t.equal(bad.length, 0, `${round}: 60/60 answered (failures: ${[...new Set(bad)].join('; ')}; app peak ${stats.peak}, ${stats.peers.size} sessions, ${Date.now() - started} ms)`);
    }
    t.ok(stats.peak <= 10, `the app never had more than 10 calls at once (peak ${stats.peak})`);
    t.equal(stats.calls, 120, 'each call reached the app once');
    t.ok(stats.peers.size <= 2, `few sessions to the app (${stats.peers.size})`);
  });
}
