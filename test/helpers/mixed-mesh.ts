// Test helper: the mesh the mixed-traffic tests (test/workers/mixed-*) run through, for real:
// frontend (client side) calling orders (the fixture's HTTP/1.1 echo app, which also takes
// WebSocket-style upgrades and echoes their bytes) and grpcapp (a grpc-js app over h2c), every
// sidecar with `workers` processes and 30 s SVIDs renewed 2-3.6 s after issue; a gRPC client
// on frontend's outbound. Everything started here is stopped at the test's end.

import type http from 'node:http';
import type net from 'node:net';
import { createHash } from 'node:crypto';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { httpPost, startSidecar, type RunningSidecar } from './mesh.js';
import type { WorkersFixture } from './workers.js';
import { mixedClient, startMixedGrpcApp, type GrpcClient } from './mixed-flows.js';

/** What of a tap test this needs: its teardown. */
type Test = { teardown(fn: () => unknown): void };

export interface MixedMesh {
  readonly frontend: RunningSidecar;
  readonly orders: RunningSidecar;
  readonly grpcapp: RunningSidecar;
  readonly client: GrpcClient;
  /** Errors the app's ends of the tunnels saw. */
  readonly appSocketErrors: string[];
}

export async function startMixedMesh(t: Test, fx: WorkersFixture, workers: number): Promise<MixedMesh> {
  const appSocketErrors: string[] = [];
  fx.app.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('error', (err) => appSocketErrors.push(err.message));
    socket.pipe(socket);
  });
  const grpcApp = await startMixedGrpcApp();
  t.teardown(() => grpcApp.stop());
  const common = { ttl: '30s', renewal: '{from: 0.15, to: 0.2}', extraYaml: `workers: ${workers}` };
  const [orders, grpcapp] = await Promise.all([
    startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}`, timeout: '30s' }, ...common }),
    startSidecar(fx.ca, { service: 'grpcapp', inbound: { app: `h2c://127.0.0.1:${grpcApp.port}`, timeout: '30s' }, ...common }),
  ]);
  const frontend = await startSidecar(fx.ca, {
    service: 'frontend',
    upstreams: [
      { name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', timeout: '30s' },
      { name: 'grpcapp', endpoints: [`127.0.0.1:${grpcapp.inboundPort}`], identity: 'spiffe://mesh.local/svc/grpcapp', timeout: '30s' },
    ],
    ...common,
  });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop('SIGKILL'), grpcapp.stop('SIGKILL')]));
  const client = mixedClient(frontend.outboundPort, 'grpcapp');
  t.teardown(() => client.close());
  return { frontend, orders, grpcapp, client, appSocketErrors };
}

/** Sum of every sample of a family whose labels contain each of `match`. */
export function total(text: string, family: string, ...match: string[]): number {
  return text.split('\n').filter((l) => l.startsWith(`${family}{`) && match.every((m) => l.includes(m))).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Replaces the config file whole (written aside, renamed over it), then POST /reload: the answer's body. */
export async function reloadWith(sidecar: RunningSidecar, edit: (text: string) => string): Promise<{ status: number; body: string }> {
  const text = await readFile(sidecar.configFile, 'utf8');
  await writeFile(`${sidecar.configFile}.new`, edit(text));
  await rename(`${sidecar.configFile}.new`, sidecar.configFile);
  return httpPost(sidecar.adminPort, '/reload');
}
