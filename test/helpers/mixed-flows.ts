// Test helper for mixed long-lived traffic through a pair of sidecars: a gRPC app (h2c, grpc-js)
// with a server-streaming and a bidi method, and flows that each run for a set time through a
// client sidecar's outbound port, reporting how they ended: a gRPC server stream, a gRPC bidi
// call, a WebSocket-style tunnel echoing bytes, a paced download and a paced upload through the
// echo app, and plain requests one after the other. Each flow is bounded in time.

import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { openTunnel } from './tunnel-pair.js';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as unknown,
};
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({ path, requestStream, responseStream, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize });

export const MIXED_SERVICE: grpc.ServiceDefinition = {
  Ticks: method('/meshcar.test.Mixed/Ticks', false, true),
  Chat: method('/meshcar.test.Mixed/Chat', true, true),
};

/** A grpc-js server: Ticks sends `{n}` every `every` ms `count` times, Chat echoes each message. */
export async function startMixedGrpcApp(): Promise<{ port: number; stop(): void }> {
  const server = new grpc.Server();
  server.addService(MIXED_SERVICE, {
    Ticks: (call: grpc.ServerWritableStream<{ count: number; every: number }, unknown>) => {
      let n = 0;
      const timer = setInterval(() => {
        if (call.cancelled) return void clearInterval(timer);
        call.write({ n: n++ });
        if (n >= call.request.count) {
          clearInterval(timer);
          call.end();
        }
      }, call.request.every);
      call.on('cancelled', () => clearInterval(timer));
    },
    Chat: (call: grpc.ServerDuplexStream<{ n: number }, unknown>) => {
      call.on('data', (message: { n: number }) => call.write({ n: message.n }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
  return { port, stop: () => server.forceShutdown() };
}

export type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function mixedClient(outboundPort: number, authority: string): GrpcClient {
  const Client = grpc.makeGenericClientConstructor(MIXED_SERVICE, 'Mixed');
  return new Client(`127.0.0.1:${outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as GrpcClient;
}

/** How a flow ended: 'ok' with what it carried, or what cut it. */
export interface FlowEnd {
  readonly flow: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A server stream of `count` messages `every` ms apart: ok when all arrived and the status is OK. */
export function grpcTicks(client: GrpcClient, count: number, every: number): Promise<FlowEnd> {
  return new Promise((resolve) => {
    let got = 0;
    const call = (client.Ticks as (req: unknown) => grpc.ClientReadableStream<{ n: number }>)({ count, every });
    call.on('data', () => got++);
    call.on('error', (err: grpc.ServiceError) => resolve({ flow: 'grpc-ticks', ok: false, detail: `${got}/${count}, ${grpc.status[err.code]}: ${err.details}` }));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ flow: 'grpc-ticks', ok: got === count, detail: `${got}/${count}` });
    });
  });
}

/** A bidi call: one message every `every` ms for `count` messages, each echoed before the next. */
export function grpcChat(client: GrpcClient, count: number, every: number): Promise<FlowEnd> {
  return new Promise((resolve) => {
    let got = 0;
    let sent = 0;
    const call = (client.Chat as () => grpc.ClientDuplexStream<unknown, { n: number }>)();
    const next = () => {
      if (sent === count) return void call.end();
      setTimeout(() => call.write({ n: sent++ }), every);
    };
    call.on('data', (m: { n: number }) => {
      if (m.n === got) got++;
      next();
    });
    call.on('error', (err: grpc.ServiceError) => resolve({ flow: 'grpc-chat', ok: false, detail: `${got}/${count}, ${grpc.status[err.code]}: ${err.details}` }));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ flow: 'grpc-chat', ok: got === count, detail: `${got}/${count}` });
    });
    call.write({ n: sent++ });
  });
}

/** A tunnel through the outbound (Host: orders): `count` chunks of 1 KiB `every` ms apart, each echoed. */
export async function tunnelEcho(outboundPort: number, count: number, every: number): Promise<FlowEnd> {
  let tunnel: Awaited<ReturnType<typeof openTunnel>>;
  try {
    tunnel = await openTunnel(outboundPort);
  } catch (err) {
    return { flow: 'tunnel', ok: false, detail: `open: ${(err as Error).message}` };
  }
  return new Promise((resolve) => {
    let received = 0;
    let sent = 0;
    const chunk = Buffer.alloc(1024, 7);
    tunnel.socket.on('data', (c: Buffer) => {
      received += c.length;
      if (received === count * chunk.length) {
        tunnel.socket.end();
        resolve({ flow: 'tunnel', ok: true, detail: `${received} bytes` });
      }
    });
    void tunnel.closed.then(() => resolve({ flow: 'tunnel', ok: received === count * chunk.length, detail: `closed after ${received}/${count * chunk.length} bytes: ${tunnel.events.join(',')}` }));
    const timer = setInterval(() => {
      if (sent === count || tunnel.socket.destroyed) return void clearInterval(timer);
      sent++;
      tunnel.socket.write(chunk);
    }, every);
  });
}

/** GET /bytes/N read at most `perTick` bytes every 50 ms: ok when every byte arrived. */
export function slowDownload(outboundPort: number, bytes: number, perTick: number): Promise<FlowEnd> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: outboundPort, path: `/bytes/${bytes}`, headers: { host: 'orders' }, agent: false }, (res) => {
      let got = 0;
      let tick = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        tick += c.length;
        if (tick >= perTick) {
          tick = 0;
          res.pause();
          setTimeout(() => res.resume(), 50);
        }
      });
      res.on('end', () => resolve({ flow: 'download', ok: res.statusCode === 200 && got === bytes, detail: `${res.statusCode} ${got}/${bytes}` }));
      res.on('error', (err) => resolve({ flow: 'download', ok: false, detail: `${res.statusCode} ${got}/${bytes}: ${err.message}` }));
      res.on('aborted', () => resolve({ flow: 'download', ok: false, detail: `${res.statusCode} ${got}/${bytes}: aborted` }));
    });
    req.on('error', (err) => resolve({ flow: 'download', ok: false, detail: err.message }));
  });
}

/** POST /sink with `bytes` in chunks of `perTick` every 50 ms: ok when the app counted them all. */
export function slowUpload(outboundPort: number, bytes: number, perTick: number): Promise<FlowEnd> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: outboundPort, method: 'POST', path: '/sink', headers: { host: 'orders', 'content-length': bytes }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ flow: 'upload', ok: res.statusCode === 200 && body === JSON.stringify({ bytes }), detail: `${res.statusCode} ${body.slice(0, 200)}` });
      });
    });
    req.on('error', (err) => resolve({ flow: 'upload', ok: false, detail: err.message }));
    let sent = 0;
    const timer = setInterval(() => {
      if (req.destroyed) return void clearInterval(timer);
      const n = Math.min(perTick, bytes - sent);
      sent += n;
      req.write(Buffer.alloc(n, 3));
      if (sent === bytes) {
        clearInterval(timer);
        req.end();
      }
    }, 50);
  });
}

/** Plain GET /headers one after the other (keep-alive) until `stop()`: the statuses seen. */
export function plainLoop(outboundPort: number): { stop(): Promise<Map<string, number>> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const statuses = new Map<string, number>();
  let running = true;
  const one = () =>
    new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: outboundPort, path: '/headers', headers: { host: 'orders' }, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode}${res.headers['x-meshcar-error'] ? ` ${String(res.headers['x-meshcar-error'])}` : ''}`));
        res.on('error', (err) => resolve(`error ${err.message}`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    });
  const done = (async () => {
    while (running) {
      const status = await one();
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    agent.destroy();
  })();
  return {
    async stop() {
      running = false;
      await done;
      return statuses;
    },
  };
}
