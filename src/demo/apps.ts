// The two demo services: `orders`, a small JSON API, and `frontend`, which answers checkouts by
// calling orders through its own sidecar's outbound port with plain HTTP and `Host: orders`.
// Neither knows TLS exists: that is the point of the demo.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** orders: GET /orders, GET /orders/{id}, POST /orders, DELETE /orders/{id}. */
export function startOrdersApp(port: number): Promise<{ server: http.Server; port: number }> {
  let nextId = 1000;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const caller = /URI=([^;,]+)/.exec(String(req.headers['x-forwarded-client-cert'] ?? ''))?.[1] ?? 'unknown';
    const match = /^\/orders\/(\d+)$/.exec(path);
    if (path === '/orders' && req.method === 'GET') return json(res, 200, { orders: [1, 2, 3], caller });
    if (path === '/orders' && req.method === 'POST') {
      req.resume();
      req.on('end', () => json(res, 201, { id: nextId++, caller }));
      return;
    }
    if (match && req.method === 'GET') return json(res, 200, { id: Number(match[1]), status: 'shipped', caller });
    if (match && req.method === 'DELETE') {
      res.writeHead(204);
      res.end();
      return;
    }
    json(res, 404, { error: 'not found' });
  });
  return listen(server, port).then((bound) => ({ server, port: bound }));
}

/** frontend: GET /checkout/{id} calls orders through the sidecar at `outboundPort`. */
export function startFrontendApp(port: number, outboundPort: number): Promise<{ server: http.Server; port: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const server = http.createServer((req, res) => {
    const match = /^\/checkout\/(\d+)$/.exec((req.url ?? '/').split('?')[0] as string);
    if (!match) return json(res, 404, { error: 'not found' });
    const call = http.request({ host: '127.0.0.1', port: outboundPort, path: `/orders/${match[1]}`, headers: { host: 'orders' }, agent }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        json(res, answer.statusCode === 200 ? 200 : 502, { checkout: Number(match[1]), order: safeParse(text), via: 'meshcar' });
      });
    });
    call.on('error', (err) => json(res, 502, { error: err.message }));
    call.end();
  });
  return listen(server, port).then((bound) => ({ server, port: bound }));
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
