// Test helper: a grpc-js app that limits its concurrent streams (grpc.max_concurrent_streams:
// 10, as gRPC servers are often configured), with one raw-bytes method, Slow, that answers
// `got <request length>` after 100 ms. It counts what it sees: calls at once (now, peak), calls
// in all, and the peers (the sidecar's address and port: one per session to the app).

import grpc from '@grpc/grpc-js';

const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
export const LIMIT_SERVICE: grpc.ServiceDefinition = { Slow: { path: '/meshcar.test.Limit/Slow', requestStream: false, responseStream: false, ...raw } };

export interface LimitedApp {
  port: number;
  stats: { now: number; peak: number; calls: number; peers: Set<string> };
  close(): void;
}

export async function limitedGrpcApp(): Promise<LimitedApp> {
  const stats = { now: 0, peak: 0, calls: 0, peers: new Set<string>() };
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 10 });
  server.addService(LIMIT_SERVICE, {
    Slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      stats.calls++;
      stats.peak = Math.max(stats.peak, ++stats.now);
      stats.peers.add(call.getPeer());
      setTimeout(() => {
        stats.now--;
        done(null, Buffer.from(`got ${call.request.length}`));
      }, 100);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, stats, close: () => server.forceShutdown() };
}
