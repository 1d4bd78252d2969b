// The benchmark's target app: a plain node:http server that answers every request with 200 and a
// small JSON body (~100 bytes), as cheaply as node:http allows, so the numbers measure the
// sidecars rather than the app. Run as its own process by bench/run.mjs (or by hand).
// Usage: node bench/app.mjs [--port 0] [--host 127.0.0.1]
// Prints one JSON line {"listening": {"host", "port"}} on stdout once bound; SIGTERM/SIGINT stop it.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

// ~100 bytes, fixed, so Content-Length is known and no chunked encoding is involved.
const BODY = Buffer.from(JSON.stringify({ id: 42, status: 'shipped', items: 3, total: '129.90', currency: 'EUR', app: 'meshcar-bench' }) + '\n');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

let requests = 0;
const server = createServer({ keepAliveTimeout: 60_000, headersTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  requests++;
  if (req.url === '/__bench/stats') {
    const stats = Buffer.from(JSON.stringify({ requests }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(stats.length) });
    res.end(stats);
    return;
  }
  // Drain any request body (the bench sends none) before answering.
  if (req.headers['content-length'] || req.headers['transfer-encoding']) req.resume();
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
server.maxRequestsPerSocket = 0;

server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ listening: { host: address.address, port: address.port }, pid: process.pid }) + '\n');
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
