// Test apps that stand behind the sidecars: an HTTP/1.1 echo app with the odd corners of the
// protocol (HEAD, 204, 304, slow answers, trailers), on a loopback port. /slow answers 'late'
// after 2 s (?ms=N: after N ms), a fixed time for timeouts; /slow?hold answers when the test
// calls release(its x-request-id), so a request is in flight exactly as long as a test needs.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestApp {
  readonly port: number;
  readonly server: http.Server;
  readonly seen: http.IncomingHttpHeaders[];
  /** Answers the /slow?hold request with this x-request-id ('late'), now if it has arrived, else as it arrives. */
  release(requestId: string): void;
  close(): Promise<void>;
}

export async function startEchoApp(): Promise<TestApp> {
  const seen: http.IncomingHttpHeaders[] = [];
  const held = new Map<string, () => void>();
  const released = new Set<string>();
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const path = (req.url ?? '/').split('?')[0] as string;
    if (path === '/headers') {
      const body = JSON.stringify({ headers: req.headers, url: req.url, method: req.method });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'keep-alive': 'timeout=5', 'x-app': 'echo' });
      res.end(body);
      return;
    }
    if (path === '/echo') {
      // stream the body back as it comes: chunked unless the request said its length
      const headers: http.OutgoingHttpHeaders = { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' };
      if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
      res.writeHead(200, headers);
      req.pipe(res);
      return;
    }
    if (path === '/sink') {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.end(JSON.stringify({ bytes })));
      return;
    }
    if (path.startsWith('/bytes/')) {
      // a large response produced in chunks with backpressure
      let remaining = Number(path.slice('/bytes/'.length));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': remaining });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (remaining > 0) {
          const piece = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
          remaining -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (path === '/status/204') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (path === '/status/304') {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
      return;
    }
    if (path === '/slow') {
      const query = new URL(req.url ?? '/', 'http://app').searchParams;
      if (query.has('hold')) {
        // held until the test calls release(x-request-id)
        const id = String(req.headers['x-request-id']);
        if (released.has(id)) return void res.end('late');
        held.set(id, () => res.end('late'));
        res.on('close', () => held.delete(id));
        return;
      }
      const timer = setTimeout(() => res.end('late'), Number(query.get('ms') ?? 2000));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (path === '/trailers') {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('body');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no such path');
  });
  server.maxHeadersCount = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    release(requestId) {
      released.add(requestId);
      held.get(requestId)?.();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: NodeJS.Dict<string>;
  readonly sawContinue: boolean;
}

export function request(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; waitForContinue?: boolean }): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    let sawContinue = false;
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, sawContinue }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    if (options.waitForContinue) {
      req.on('continue', () => {
        sawContinue = true;
        req.end(options.body);
      });
      req.flushHeaders();
    } else {
      req.end(options.body);
    }
  });
}
