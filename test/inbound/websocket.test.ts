// WebSocket through the inbound listener, with nothing but raw sockets: the Upgrade request is
// authorized, reaches the app with our XFCC, the app's 101 comes back, and frames flow both
// ways until either side closes. Refusals (authorization, the app saying no) are plain answers.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FRONTEND_ID, startInbound, TD } from '../helpers/inbound-fixture.js';
import { rawTlsUntilClosed, watchedTlsSocket } from '../helpers/raw-http.js';
import { memoryLogger } from '../helpers/ca.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const acceptOf = (key: string) => createHash('sha1').update(key + GUID).digest('base64');

/** A text frame (payload < 64 KiB), masked when the client sends it. */
function frame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length < 126 ? Buffer.from([payload.length]) : Buffer.from([126, payload.length >> 8, payload.length & 0xff]);
  const maskBit = masked ? 0x80 : 0;
  length[0] = (length[0] as number) | maskBit;
  if (!masked) return Buffer.concat([Buffer.from([0x81]), length, payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x81]), length, mask, body]);
}

/** Reads complete frames out of a byte stream (payloads < 64 KiB). */
function frames(buffer: Buffer): { texts: string[]; rest: Buffer } {
  const texts: string[] = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const masked = ((buffer[offset + 1] as number) & 0x80) !== 0;
    let length = (buffer[offset + 1] as number) & 0x7f;
    let header = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      header = 4;
    }
    const start = offset + header + (masked ? 4 : 0);
    if (buffer.length < start + length) break;
    let payload = buffer.subarray(start, start + length);
    if (masked) {
      const mask = buffer.subarray(offset + header, offset + header + 4);
      payload = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    }
    texts.push(payload.toString());
    offset = start + length;
  }
  return { texts, rest: buffer.subarray(offset) };
}

/** The app: upgrades /ws (announcing the XFCC it saw), refuses anything else with 400. */
function onAppUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => {});
  if (req.url === '/ponder') {
    // never answers; goes away when the sidecar gives up
    socket.on('end', () => socket.destroy());
    socket.resume();
    return;
  }
  if (req.url === '/other-protocol') {
    // a switch to a protocol the caller did not offer (RFC 9110 §7.8)
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nRAW');
    socket.on('end', () => socket.destroy());
    socket.resume();
    return;
  }
  if (req.url !== '/ws') {
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nno ws\r\n');
    return;
  }
  // with an x-meshcar-error of its own, which only a sidecar may say, and hop-by-hop fields
  // (one its Connection names) that stay on its connection
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x-t\r\nX-Meshcar-Error: upstream_unavailable\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
  socket.write(frame(`xfcc ${req.headers['x-forwarded-client-cert']}`, false));
  let pending: Buffer = head;
  socket.on('data', (chunk: Buffer) => {
    const { texts, rest } = frames(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const text of texts) socket.write(frame(`echo ${text}`, false));
  });
  socket.on('error', () => {});
  // HTTP server sockets allow half-open: one last message after the caller's FIN, then close
  socket.on('end', () => socket.end(frame('after-fin', false)));
}

interface WsClient {
  head: string;
  messages: string[];
  socket: tls.TLSSocket;
  next(): Promise<string>;
  closed: Promise<void>;
}

function openWs(port: number, tlsOptions: tls.ConnectionOptions, path: string, extraHeaders = ''): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...tlsOptions }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`);
    });
    let buffer: Buffer = Buffer.alloc(0);
    let head: string | undefined;
    const messages: string[] = [];
    const waiters: Array<(text: string) => void> = [];
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (head === undefined) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        head = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.on('end', () => resolve({ head: `${head}\r\n\r\n${buffer.toString()}`, messages, socket, next: async () => '', closed }));
          socket.on('data', (more: Buffer) => (buffer = Buffer.concat([buffer, more])));
          return;
        }
        if (!head.includes(`Sec-WebSocket-Accept: ${acceptOf(key)}`)) reject(new Error(`bad accept in ${head}`));
        resolve({
          head,
          messages,
          socket,
          closed,
          next: () => (messages.length > 0 ? Promise.resolve(messages.shift() as string) : new Promise((r) => waiters.push(r))),
        });
      }
      const { texts, rest } = frames(buffer);
      buffer = rest;
      for (const text of texts) {
        const waiter = waiters.shift();
        if (waiter) waiter(text);
        else messages.push(text);
      }
    });
  });
}

t.test('WebSocket upgrade through the inbound listener', async (t) => {
  const logLines: Array<Record<string, unknown>> = [];
  const fx = await startInbound({
    logger: memoryLogger(logLines),
    app: { protocol: 'http', handler: (_req, res) => res.end('plain'), setup: (server) => server.on('upgrade', onAppUpgrade) },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/ws', '/nows', '/ponder'] }],
  });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();

  t.test('frames flow both ways; the app saw our XFCC, not the forged one', async (t) => {
    const ws = await openWs(fx.port, tlsOptions, '/ws', 'X-Forwarded-Client-Cert: By=forged\r\n');
    t.match(ws.head, /^HTTP\/1\.1 101 /);
    t.notMatch(ws.head, /x-meshcar-error/i, "the app's x-meshcar-error is dropped from its 101, as from any answer (it went on verbatim)");
    t.notMatch(ws.head, /x-hop|secret|keep-alive|\r\nte:|trailer/i, 'so are its hop-by-hop fields and the one its Connection names');
    t.match(ws.head, /\r\nConnection: Upgrade\r\n/, 'Connection says Upgrade alone');
    t.match(ws.head, /\r\nSec-WebSocket-Accept: /, "the protocol's own field goes on");
    t.match(await ws.next(), new RegExp(`^xfcc By=spiffe://${TD}/svc/orders;Hash=[0-9a-f]{64};URI=${FRONTEND_ID}$`));
    ws.socket.write(frame('hello', true));
    t.equal(await ws.next(), 'echo hello');
    ws.socket.write(frame('again', true));
    t.equal(await ws.next(), 'echo again');
    t.equal(fx.inbound.inFlight, 1, 'the open tunnel counts as in flight');
    // recorded at the 101, as the outbound records it: a tunnel open for hours is counted while
    // open, and its lifetime is not the request's duration (it was recorded at its close)
    const records = await fx.observer.waitForRequests(1);
    t.same(records.map((r) => [r.method, r.path, r.status, r.errorCode]), [['GET', '/ws', 101, undefined]], 'recorded while the tunnel is open');
    ws.socket.end();
    await ws.closed;
    // the sidecar's side closes after ours (bounded wait for it)
    for (let i = 0; i < 300 && fx.inbound.inFlight !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.equal(fx.inbound.inFlight, 0, 'the closed tunnel is no longer in flight');
    t.equal(fx.observer.requests.length, 1, 'and recorded only once');
  });

  t.test("half-close: the app's bytes after the caller's FIN still reach the caller", async (t) => {
    const ws = await openWs(fx.port, { ...tlsOptions, allowHalfOpen: true }, '/ws');
    t.match(await ws.next(), /^xfcc /);
    ws.socket.write(frame('hello', true));
    t.equal(await ws.next(), 'echo hello');
    ws.socket.end();
    t.equal(await Promise.race([ws.next(), ws.closed.then(() => 'closed without it')]), 'after-fin');
    await ws.closed;
  });

  t.test('a tunnel closes after inbound.tunnelIdleTimeout without a byte either way, not while bytes move', async (t) => {
    fx.inbound.setTimeouts({ timeoutMs: 5_000, tunnelIdleTimeoutMs: 1000 });
    t.teardown(() => fx.inbound.setTimeouts({ timeoutMs: 5_000 }));
    const ws = await openWs(fx.port, tlsOptions, '/ws');
    t.match(await ws.next(), /^xfcc /);
    // busy for longer than the idle timeout, a message every 100 ms (a tenth of it, so a
    // loaded machine's late timer cannot pass for idleness): each message re-arms it
    for (let i = 0; i < 14; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ws.socket.write(frame(`m${i}`, true));
      t.equal(await ws.next(), `echo m${i}`);
    }
    const quietFrom = Date.now();
    await ws.closed;
    const idleMs = Date.now() - quietFrom;
    t.ok(idleMs >= 500 && idleMs < 3_000, `closed ${idleMs} ms after the last byte (tunnelIdleTimeout 1000 ms)`);
    // both apps read a reset, as from a crashed peer: the sidecar's log says it was the limit
    const said = logLines.filter((l) => String(l.msg).startsWith('WebSocket tunnel cut: no bytes either way for 1s (tunnelIdleTimeout)'));
    t.equal(said.length, 1, 'one info line says the tunnel was cut for idleness');
    t.match(said[0], { level: 30, peer: FRONTEND_ID, path: '/ws' }, 'naming the caller and the path');
  });

  t.test('an unauthorized upgrade gets 403 forbidden and the connection closes', async (t) => {
    const ws = await openWs(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/intruder`), '/ws');
    t.match(ws.head, /^HTTP\/1\.1 403 /);
    t.match(ws.head, /x-meshcar-error: forbidden/);
    t.match(ws.head, /"error":"forbidden"/);
    await ws.closed;
  });

  t.test("the app's refusal is relayed as a plain answer", async (t) => {
    const ws = await openWs(fx.port, tlsOptions, '/nows');
    t.match(ws.head, /^HTTP\/1\.1 400 /);
    t.match(ws.head, /no ws/);
    await ws.closed;
  });

  t.test('Upgrade: h2c is refused', async (t) => {
    const text = await rawTlsUntilClosed(fx.port, tlsOptions, 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
    t.match(text, /^HTTP\/1\.1 400 /);
    t.match(text, /x-meshcar-error: bad_request/);
  });
});

t.test('a caller that resets while the app ponders its upgrade does not bring the listener down', async (t) => {
  const fx = await startInbound({ timeoutMs: 300, app: { protocol: 'http', handler: (_req, res) => res.end('plain'), setup: (server) => server.on('upgrade', onAppUpgrade) } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  await new Promise<void>((resolve, reject) => {
    const tcp = net.connect(fx.port, '127.0.0.1');
    const s = tls.connect({ socket: tcp, ALPNProtocols: ['http/1.1'], ...tlsOptions }, () => {
      s.write('GET /ponder HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      setTimeout(() => {
        tcp.resetAndDestroy(); // TCP RST: writing the 504 later meets ECONNRESET or EPIPE
        resolve();
      }, 100);
    });
    s.on('error', reject);
  });
  const records = await fx.observer.waitForRequests(1);
  t.same(records.map((r) => r.path), ['/ponder']);
  t.equal(fx.inbound.inFlight, 0);
  t.match((await openWs(fx.port, tlsOptions, '/nows')).head, /^HTTP\/1\.1 400 /, 'still serving');
});

t.test('an Upgrade or CONNECT pipelined behind an unanswered request: its answer goes out, then the connection closes; the process stays up', async (t) => {
  const held: Array<{ end(text: string): void }> = [];
  const fx = await startInbound({
    app: {
      protocol: 'http',
      handler: (req, res) => {
        if (req.url === '/held') held.push(res);
        else res.end('plain');
      },
      setup: (server) => server.on('upgrade', onAppUpgrade),
    },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/held', '/ws', '/nows'] }],
  });
  t.teardown(() => {
    for (const res of held) res.end('late');
    return fx.close();
  });
  const tlsOptions = await fx.tlsOptions();
  for (const [label, second] of [
    ['Upgrade', 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n'],
    ['CONNECT', 'CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n'],
  ] as const) {
    const closed = rawTlsUntilClosed(fx.port, tlsOptions, `GET /held HTTP/1.1\r\nHost: x\r\n\r\n${second}`);
    // the app answers the held request once it has it (the pipelined one was read by then)
    const before = held.length;
    for (let i = 0; i < 1000 && held.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    held[before]?.end('the held answer');
    const text = await closed;
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/, `${label}: the earlier request gets its answer (the app carried it out)`);
    t.match(text, /\r\nconnection: close\r\n/i, `${label}: which says the connection closes`);
    t.match(text, /\r\n\r\n(f\r\n)?the held answer(\r\n0\r\n\r\n)?$/, `${label}: all of it, then the connection closes, nothing written for the ${label}`);
  }
  await fx.observer.waitForRequests(2);
  t.equal(fx.inbound.inFlight, 0, 'the held requests ended with their connections');
  t.match((await openWs(fx.port, tlsOptions, '/nows')).head, /^HTTP\/1\.1 400 /, 'still serving');
});

t.test('a refused Upgrade, then a caller that keeps its side open: the inbound lets go of the connection and of the drain', async (t) => {
  const fx = await startInbound({
    app: { protocol: 'http', handler: (_req, res) => res.end('plain'), setup: (server) => server.on('upgrade', onAppUpgrade) },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/ws', '/nows'] }],
  });
  t.teardown(() => fx.close());
  const lingering = async (id: string | undefined, path: string) => {
    const watched = watchedTlsSocket(fx.port, await fx.tlsOptions(id), true);
    const socket = watched.socket;
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await new Promise((resolve) => socket.once('end', resolve));
    t.teardown(() => socket.destroy());
    return watched;
  };
  for (const [label, id, path, status] of [
    ['our own refusal', `spiffe://${TD}/svc/intruder`, '/ws', /^HTTP\/1\.1 403 /],
    ["the app's, relayed", undefined, '/nows', /^HTTP\/1\.1 400 /],
  ] as const) {
    const caller = await lingering(id, path);
    t.match(caller.text(), status, `${label}: answered, then the inbound's end of the stream`);
    // a closed socket answers the next bytes with a reset (seen by a later write); a half-open
    // one would take and drop them for ever
    const until = Date.now() + 3_000;
    while (!caller.closed() && Date.now() < until) {
      caller.socket.write('anyone there?');
      await new Promise((r) => setTimeout(r, 5));
    }
    t.ok(caller.closed(), `${label}: the connection closed`);
  }
  await lingering(`spiffe://${TD}/svc/intruder`, '/ws');
  const started = Date.now();
  await fx.inbound.drain(10_000);
  t.ok(Date.now() - started < 2_000, `drain did not wait for the caller's open side (${Date.now() - started} ms)`);
});

t.test('an app switching to a protocol the caller did not offer: 502, never a tunnel', async (t) => {
  // RFC 9110 §7.8; review of tunnels: Upgrade: h2c to a WebSocket request opened an h2c tunnel
  const fx = await startInbound({
    app: { protocol: 'http', handler: (_req, res) => res.end('plain'), setup: (server) => server.on('upgrade', onAppUpgrade) },
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/other-protocol'] }],
  });
  t.teardown(() => fx.close());
  const answer = await rawTlsUntilClosed(fx.port, await fx.tlsOptions(), 'GET /other-protocol HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', 5_000);
  t.match(answer, /^HTTP\/1\.1 502 /, answer);
  t.match(answer, /the app answered 101 switching to h2c, which the request did not offer/);
  t.notMatch(answer, /RAW/, 'nothing the app sent after its 101');
});
