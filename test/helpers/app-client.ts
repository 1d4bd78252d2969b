// Test helper: drives meshcar's own HTTP/1.1 client toward the app (src/inbound/app-pool.ts)
// directly, without a sidecar: a dispatch handler that records every call it gets, and apps on
// 127.0.0.1 that keep what each connection brought and when it closed (a raw TCP app, for bytes
// under the test's control, and a node:http one, where a real server suffices).

import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AppDispatchHandler, AppDispatcher, AppRequest } from '../../src/inbound/app-dispatch.js';
import { waitFor } from './mesh.js';

const KEPT_BYTES = 1024 * 1024;

/** Records the client's calls; onData answers `!paused` (false: the client stops reading). */
export class RecordingHandler implements AppDispatchHandler {
  /** Every call in order: connect, sent, headers, data, complete, error. */
  readonly calls: string[] = [];
  abort: (() => void) | undefined = undefined;
  status: number | undefined = undefined;
  rawHeaders: string[] = [];
  resume: (() => void) | undefined = undefined;
  readonly chunks: Buffer[] = [];
  bytes = 0;
  trailers: Array<Buffer | string> | null | undefined = undefined;
  error: (Error & { code?: string }) | undefined = undefined;
  completedAt = 0;
  paused = false;

  constructor(private readonly hooks: { connect?(abort: () => void): void; keepChunks?: boolean } = {}) {}

  get done(): boolean {
    return this.calls.includes('complete') || this.calls.includes('error');
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** The recorded calls, runs of `data` folded into one. */
  get shape(): string {
    return this.calls.filter((call, i) => call !== 'data' || this.calls[i - 1] !== 'data').join(' ');
  }

  onConnect(abort: () => void): void {
    this.calls.push('connect');
    this.abort = abort;
    this.hooks.connect?.(abort);
  }

  onRequestSent(): void {
    this.calls.push('sent');
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void): boolean {
    this.calls.push('headers');
    this.status = statusCode;
    this.rawHeaders = rawHeaders.map(String);
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.calls.push('data');
    this.bytes += chunk.length;
    if (this.hooks.keepChunks !== false) this.chunks.push(chunk);
    return !this.paused;
  }

  onComplete(rawTrailers: Array<Buffer | string> | null): void {
    this.calls.push('complete');
    this.trailers = rawTrailers;
    this.completedAt = Date.now();
  }

  onError(err: Error): void {
    this.calls.push('error');
    this.error = err;
  }

  /** Resumes reading after a false from onData. */
  unpause(): void {
    this.paused = false;
    this.resume?.();
  }
}

/** Dispatches `request` and waits until its handler completes or fails. */
export async function exchange(pool: AppDispatcher, request: AppRequest, handler = new RecordingHandler()): Promise<RecordingHandler> {
  pool.dispatch(request, handler);
  await settled(handler);
  return handler;
}

export async function settled(handler: RecordingHandler, timeoutMs = 5000): Promise<void> {
  await waitFor(async () => handler.done, timeoutMs, `the answer (calls so far: ${handler.shape})`);
}

export function get(path: string, headers: string[] = ['host', 'app']): AppRequest {
  return { method: 'GET', path, headers };
}

/** One connection as the app saw it. */
export interface SeenConnection {
  readonly id: number;
  readonly socket: net.Socket;
  /** What the connection brought, its first MB (`bytes` counts all of it). */
  received: Buffer;
  bytes: number;
  /** Request heads read so far (`startRawApp`-style apps only), their request lines. */
  readonly lines: string[];
  closed: boolean;
  closedAt: number;
}

export interface TrackedApp {
  readonly port: number;
  readonly connections: SeenConnection[];
  /** Connections open at once, at most so far. */
  readonly maxOpen: number;
  closedCount(): number;
  close(): Promise<void>;
}

function track(server: net.Server, onSocket: (seen: SeenConnection) => void): Promise<TrackedApp> {
  const connections: SeenConnection[] = [];
  let open = 0;
  let maxOpen = 0;
  server.on('connection', (socket: net.Socket) => {
    const seen: SeenConnection = { id: connections.length + 1, socket, received: Buffer.alloc(0), bytes: 0, lines: [], closed: false, closedAt: 0 };
    connections.push(seen);
    maxOpen = Math.max(maxOpen, ++open);
    socket.on('error', () => {});
    socket.on('close', () => {
      open--;
      seen.closed = true;
      seen.closedAt = Date.now();
    });
    onSocket(seen);
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => ({
    port: (server.address() as net.AddressInfo).port,
    connections,
    get maxOpen() {
      return maxOpen;
    },
    closedCount: () => connections.filter((c) => c.closed).length,
    close: () => {
      for (const c of connections) c.socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }));
}

/** A raw TCP app: `onData` sees each connection's bytes as they come (the first MB of them also in `received`). */
export function startTcpApp(onData: (seen: SeenConnection, chunk: Buffer) => void = () => {}, onConnection: (seen: SeenConnection) => void = () => {}): Promise<TrackedApp> {
  const server = net.createServer();
  return track(server, (seen) => {
    seen.socket.on('data', (chunk: Buffer) => {
      seen.bytes += chunk.length;
      // a large body is counted, not kept (concatenating 20 MB piece by piece costs seconds)
      if (seen.received.length < KEPT_BYTES) seen.received = Buffer.concat([seen.received, chunk]);
      onData(seen, chunk);
    });
    onConnection(seen);
  });
}

/** A raw TCP app for bodiless requests: `answer` gets each request head's path as it completes. */
export function startHeadApp(answer: (path: string, seen: SeenConnection, line: string) => void): Promise<TrackedApp> {
  const pending = new Map<SeenConnection, number>();
  return startTcpApp((seen) => {
    let at = pending.get(seen) ?? 0;
    let end: number;
    while (!seen.socket.destroyed && (end = seen.received.indexOf('\r\n\r\n', at)) !== -1) {
      const line = seen.received.toString('latin1', at, seen.received.indexOf('\r\n', at));
      at = end + 4;
      seen.lines.push(line);
      answer(line.split(' ')[1] as string, seen, line);
    }
    pending.set(seen, at);
  });
}

/** A node:http app; `seen` is the connection the request came on. */
export async function startHttpApp(handle: (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenConnection) => void): Promise<TrackedApp> {
  const server = http.createServer();
  const bySocket = new Map<net.Socket, SeenConnection>();
  const app = await track(server, (seen) => bySocket.set(seen.socket, seen));
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const seen = bySocket.get(req.socket) as SeenConnection;
    seen.lines.push(`${req.method} ${req.url}`);
    handle(req, res, seen);
  });
  return app;
}
