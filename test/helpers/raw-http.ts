// Test helper: HTTP/1.1 spoken by hand over a raw socket (TCP or mutual TLS), for hostile input
// that no well-behaved client would send (smuggling attempts, contradictory framing). Writes the
// bytes as given and reads back exactly one response, framed by Content-Length, chunked, or
// the end of the connection.

import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';

export interface RawResponse {
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Sends `bytes` over a fresh mTLS connection (ALPN http/1.1) and reads one response. */
export function rawTlsRequest(port: number, tlsOptions: tls.ConnectionOptions, bytes: string | Buffer): Promise<RawResponse> {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...tlsOptions });
  return exchange(socket, bytes, 'secureConnect');
}

/**
 * Sends `bytes` over a fresh mTLS connection (ALPN http/1.1); resolves with all it received once
 * the server closes it, or once `ms` have passed (then we close it, and what came so far is
 * returned: a test that expects the server to close checks the answer count).
 */
export function rawTlsUntilClosed(port: number, tlsOptions: tls.ConnectionOptions, bytes: string, ms?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...tlsOptions }, () => socket.write(bytes));
    const bound = ms === undefined ? undefined : setTimeout(() => socket.destroy(), ms);
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (out += c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(bound);
      resolve(out);
    });
  });
}

/**
 * Sends `bytes` over a fresh plain TCP connection; resolves with all it received once the server
 * closes it, or once `ms` have passed (`closed` false then; the connection is closed by us).
 */
export async function rawTcpUntilClosed(port: number, bytes: string, ms = 30_000): Promise<{ text: string; closed: boolean }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.write(bytes);
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)))]);
  clearTimeout(timer);
  socket.destroy();
  return { text, closed };
}

/** A fresh mTLS connection (ALPN http/1.1) whose received text and close are recorded as they come. */
export function watchedTlsSocket(port: number, tlsOptions: tls.ConnectionOptions, allowHalfOpen = false): { socket: tls.TLSSocket; text(): string; closed(): boolean } {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], allowHalfOpen, ...tlsOptions });
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  return { socket, text: () => text, closed: () => closed };
}

/** Sends `bytes` over a fresh plain TCP connection and reads one response. */
export function rawTcpRequest(port: number, bytes: string | Buffer): Promise<RawResponse> {
  return exchange(net.connect({ host: '127.0.0.1', port }), bytes, 'connect');
}

function exchange(socket: net.Socket, bytes: string | Buffer, ready: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | undefined, response?: RawResponse) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(response as RawResponse);
    };
    socket.once(ready, () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseResponse(received, false);
      if (parsed) finish(undefined, parsed);
    });
    socket.on('end', () => {
      const parsed = parseResponse(received, true);
      finish(parsed ? undefined : new Error(`the connection ended without a complete response: ${JSON.stringify(received.toString('latin1'))}`), parsed);
    });
    socket.on('error', (err) => finish(err));
  });
}

/** One complete response at the start of `data`, or undefined while more is needed. */
export function parseResponse(data: Buffer, atEnd: boolean): RawResponse | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const lines = data.toString('latin1', 0, headEnd).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = data.subarray(headEnd + 4);
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, headers, body: '' };
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return rest.length >= length ? { status, headers, body: rest.toString('utf8', 0, length) } : undefined;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const body = decodeChunked(rest);
    return body === undefined ? undefined : { status, headers, body };
  }
  return atEnd ? { status, headers, body: rest.toString('utf8') } : undefined;
}

function decodeChunked(data: Buffer): string | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(data.toString('latin1', at, lineEnd), 16);
    // the last chunk, then trailers (if any) up to an empty line
    if (size === 0) return data.indexOf('\r\n\r\n', lineEnd) === -1 ? undefined : Buffer.concat(parts).toString('utf8');
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** `text` as one chunk and the last chunk of a chunked body. */
export function chunked(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;
}

/** A request head a raw app read: its request line, and which connection (1, 2, ...) brought it as its how-manieth request. */
export interface RawRequestSeen {
  readonly line: string;
  readonly connection: number;
  readonly served: number;
}

/**
 * An app written as raw TCP, for answers no HTTP library would send: `answer` gets every
 * bodiless request head (read as far as its blank line) and writes to, or resets, the socket.
 */
export async function startRawApp(answer: (request: RawRequestSeen, socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    const connection = ++connections;
    let served = 0;
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while (!socket.destroyed && (end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const line = buffered.slice(0, buffered.indexOf('\r\n'));
        buffered = buffered.slice(end + 4); // every request to a raw app is bodiless
        answer({ line, connection, served: ++served }, socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: closer(server) };
}

/** A raw app: answers every request as soon as its head is in (no 100 Continue), records request lines in order; bodies by Content-Length only. */
export async function startEagerApp(seen: string[]) {
  const server = net.createServer((socket) => {
    let buffered = '';
    let skip = 0;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const skipped = Math.min(skip, buffered.length);
        buffered = buffered.slice(skipped);
        skip -= skipped;
        const end = buffered.indexOf('\r\n\r\n');
        if (skip > 0 || end === -1) return;
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        skip = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
        seen.push(head.slice(0, head.indexOf(' HTTP/1.1')));
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: closer(server) };
}

/**
 * Closes a raw app's server and every connection still open to it: a sidecar's pooled
 * keep-alive connection would otherwise hold server.close() until its idle timeout (30 s),
 * which is how long two tests each spent in their teardown.
 */
export function closer(server: net.Server): () => Promise<void> {
  const open = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of open) socket.destroy();
    });
}

/**
 * `server` bound to a loopback port 0 (its port returned), closed with every connection still
 * open to it at the end of the test; connection errors (a client's reset) are ignored.
 */
export async function listening(t: { teardown(fn: () => unknown): void }, server: net.Server): Promise<number> {
  server.on('connection', (socket: net.Socket) => socket.on('error', () => undefined));
  t.teardown(closer(server));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

/**
 * A client that sends its whole request before it reads anything (as Python's http.client,
 * urllib and requests do: sendall, then recv): `head`, then `bodyBytes` of body, over `socket`
 * once it is `ready`. Resolves with the status line it then reads ('HTTP/1.1 503 ...'), or with
 * what ended it first ('write EPIPE', 'write ECONNRESET', 'closed before a status line').
 */
export function sendAllThenRead(socket: net.Socket, ready: 'connect' | 'secureConnect', head: string, bodyBytes: number): Promise<string> {
  return new Promise((resolve) => {
    let failed: string | undefined;
    let reading = false;
    let text = '';
    const finish = (outcome: string) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failed ??= `${reading ? 'read' : 'write'} ${err.code ?? err.message}`;
      finish(failed);
    });
    socket.once(ready, async () => {
      socket.pause();
      socket.write(head);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let sent = 0; sent < bodyBytes && failed === undefined && !socket.destroyed; sent += chunk.length) {
        if (!socket.write(chunk)) await drainedOrClosed(socket);
      }
      // every byte handed to the kernel before the first read
      if (socket.writableLength > 0 && !socket.destroyed) await drainedOrClosed(socket);
      if (failed !== undefined || socket.destroyed) return;
      reading = true;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => {
        text += c;
        const line = /^HTTP\/1\.[01] \d{3}[^\r\n]*\r\n/.exec(text);
        if (line) finish(line[0].trim());
      });
      socket.on('end', () => finish(`closed before a status line (read ${JSON.stringify(text.slice(0, 40))})`));
      socket.resume();
    });
  });
}

function drainedOrClosed(socket: net.Socket): Promise<void> {
  return new Promise((next) => {
    const go = () => {
      socket.off('drain', go);
      socket.off('close', go);
      next();
    };
    socket.on('drain', go);
    socket.on('close', go);
  });
}
