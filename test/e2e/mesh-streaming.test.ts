// Whole mesh, streams: 100 MB request and response bodies pass through both sidecars while
// their memory stays flat; an h2c client with prior knowledge; a WebSocket upgrade carried
// over its own mTLS connection.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startSidecar, rssOf, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const MB = 1024 * 1024;
const mesh = meshFixture(t);
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  // WebSocket-style upgrades: answer 101 and echo raw bytes
  mesh.app.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Caller: ${String(req.headers['x-forwarded-client-cert'] ?? '').replace(/.*URI=/, '')}\r\n\r\n`);
    socket.pipe(socket);
  });
  orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}`, timeout: '30s' } });
  frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', timeout: '30s' }] });
});
t.teardown(() => Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]));

t.test('100 MB each way, streamed: each sidecar grows by less than 50 MB', async (t) => {
  const pids = [frontend.process.child.pid as number, orders.process.child.pid as number];
  // 8 MB each way first: the session between the sidecars, the pooled connection to the app and
  // its parser (compiled on first use), and V8's heap sizing for a stream (its young generation
  // grows to 32 MB under any sustained load) happen once per process, not per byte streamed.
  // What is measured below is what 100 MB more adds: a sidecar that buffered would add them.
  // (From a cold start the same run grows the sidecars by 37-51 MB, that warm-up included.)
  await request(frontend.outboundPort, { method: 'POST', path: '/sink', headers: { host: 'orders' }, body: Buffer.alloc(8 * MB, 2) });
  await request(frontend.outboundPort, { path: `/bytes/${8 * MB}`, headers: { host: 'orders' } });
  const before = await Promise.all(pids.map(rssOf));

  const upload = await new Promise<{ bytes: number }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: frontend.outboundPort, method: 'POST', path: '/sink', headers: { host: 'orders', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(MB, 1);
    let sent = 0;
    const pump = () => {
      while (sent < 100) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  t.equal(upload.bytes, 100 * MB, '100 MB request body arrived whole');

  const downloaded = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: frontend.outboundPort, path: `/bytes/${100 * MB}`, headers: { host: 'orders' }, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    }).on('error', reject);
  });
  t.equal(downloaded, 100 * MB, '100 MB response body arrived whole');

  const after = await Promise.all(pids.map(rssOf));
  for (const [i, name] of ['frontend sidecar', 'orders sidecar'].entries()) {
    const growth = (after[i]?.peakMb ?? 0) - (before[i]?.rssMb ?? 0);
    t.ok(growth < 50, `${name}: peak RSS ${after[i]?.peakMb.toFixed(1)} MB, grew ${growth.toFixed(1)} MB`);
  }
});

t.test('an h2c client with prior knowledge on the same outbound port', async (t) => {
  const session = http2.connect(`http://127.0.0.1:${frontend.outboundPort}`);
  t.teardown(() => session.close());
  const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const stream = session.request({ ':path': '/headers', ':authority': 'orders', ':method': 'GET' });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    stream.end();
  });
  t.equal(body.status, 200);
  t.match(JSON.parse(body.text).headers['x-forwarded-client-cert'], /URI=spiffe:\/\/mesh\.local\/svc\/frontend/);
});

t.test('WebSocket upgrade through the mesh', async (t) => {
  const socket = net.connect(frontend.outboundPort, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('GET /ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  let received = Buffer.alloc(0);
  const waitFor = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${received.toString()}`)), 5000);
      const check = () => {
        if (pattern.test(received.toString('latin1'))) {
          clearTimeout(timer);
          socket.off('data', onData);
          resolve(received.toString('latin1'));
        }
      };
      const onData = (c: Buffer) => {
        received = Buffer.concat([received, c]);
        check();
      };
      socket.on('data', onData);
      check();
    });
  const head = await waitFor(/\r\n\r\n/);
  t.match(head, /^HTTP\/1\.1 101/);
  t.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i, 'the handshake answer is the app\'s own');
  t.match(head, /X-Caller: spiffe:\/\/mesh\.local\/svc\/frontend/i, 'the app saw the caller identity');
  received = Buffer.alloc(0);
  socket.write('ping over a websocket');
  t.match(await waitFor(/ping over a websocket/), /ping over a websocket/, 'bytes echo both ways after the upgrade');
});

