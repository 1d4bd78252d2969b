// undici's Pool as the inbound's client toward an HTTP/1.1 app (`http1: {appClient: undici}`;
// the default is meshcar's own, app-pool.ts): the same dispatch handler, its options made from
// an AppRequest. Loaded only when chosen: undici and its WebAssembly parser cost ~15 MB of
// resident memory a sidecar on the own client never pays.

import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import type { Dispatcher, Pool as PoolType } from 'undici';
import type { AppDispatchHandler, AppDispatcher, AppPoolOptions, AppRequest } from './app-dispatch.js';

export class UndiciAppPool implements AppDispatcher {
  private readonly pool: PoolType;
  /** TLS only, and the app is plain HTTP; given, undici skips deriving it from Host per request (~1.5 µs). */
  private readonly servername: string;

  constructor(options: AppPoolOptions) {
    // undici's Pool alone: the package's index also loads fetch, WebSocket, caches and mocks
    // (RSS +28 MB through the index, +15 MB through the pool, llhttp's WebAssembly included)
    const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
    // Once undici's llhttp (WebAssembly) is hot, V8 recompiles it with TurboFan on background
    // threads, and the compiler's memory stays with the allocator (inbound RSS 78 → 107 MB in
    // make bench). Liftoff, the baseline compiler, costs no measurable CPU here. The flag is
    // read when a module is compiled, which undici does on its first connection, after this.
    v8.setFlagsFromString('--liftoff-only');
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.servername = `${options.host}:${options.port}`;
    this.pool = new Pool(`http://${host}:${options.port}`, {
      connections: options.maxConnections ?? 256,
      pipelining: 1,
      keepAliveTimeout: options.idleTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: options.idleTimeoutMs ?? 30_000,
      // the exchange owns the deadlines (inbound timeout, idle timeout): no second set of timers
      headersTimeout: 0,
      bodyTimeout: 0,
      // a request body longer or shorter than its Content-Length is an error, never a warning
      strictContentLength: true,
    });
  }

  dispatch(request: AppRequest, handler: AppDispatchHandler): void {
    const headers = request.headers as string[];
    if (request.contentLength !== undefined) headers.push('content-length', String(request.contentLength));
    // a repeated field goes as an array value (undici writes one line each); the types say string[]
    const options = { method: request.method as Dispatcher.HttpMethod, path: request.path, headers, servername: this.servername } as Dispatcher.DispatchOptions;
    // undici destroys the body stream it sent or gave up on, and takes an IncomingMessage's
    // socket away first: the caller's own request (or HTTP/2 stream, which is also its
    // response) must never be that stream, so undici gets a PassThrough of its own
    if (request.body !== undefined) options.body = request.body.pipe(new PassThrough());
    this.pool.dispatch(options, handler as unknown as Dispatcher.DispatchHandler);
  }

  close(): void {
    void this.pool.destroy().catch(() => undefined);
  }
}
