// Test helper: plain HTTP sent to a TLS port (the inbound's, the CA's), as users mistype it and
// as hostile clients send it: real curl with an http:// URL, a raw client that sends a request
// and then neither reads nor closes (or keeps sending), and clients that reset at once.

import type { Test } from 'tap';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendAllThenRead } from './raw-http.js';
import { heldConnectionsOn } from './connections.js';

export interface CurlAnswer {
  /** curl's exit code (0: a whole answer was read). */
  readonly exitCode: number;
  /** The first line of the answer, e.g. `HTTP/1.1 400 Bad Request`; '' when there was none. */
  readonly statusLine: string;
  /** Header names lower-cased. */
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly stderr: string;
}

/** `curl -i` with these arguments (an http:// URL among them): what it read, or its error. */
export function curlPlain(args: readonly string[]): Promise<CurlAnswer> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-i', '--max-time', '20', ...args], { encoding: 'latin1' }, (err, stdout, stderr) => {
      const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      const headEnd = stdout.indexOf('\r\n\r\n');
      const lines = (headEnd === -1 ? stdout : stdout.slice(0, headEnd)).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ exitCode, statusLine: lines[0] ?? '', headers, body: headEnd === -1 ? '' : stdout.slice(headEnd + 4), stderr });
    });
  });
}

/**
 * Checks that curl read meshcar's plain-HTTP answer: a whole `400 Bad Request` that closes the
 * connection, with the JSON error body (`bad_request`) whose message matches `said`.
 */
export function checkPlainHttpAnswer(t: Test, got: CurlAnswer, said: RegExp): void {
  t.equal(got.exitCode, 0, `curl read a whole answer (${got.stderr.trim()})`);
  t.equal(got.statusLine, 'HTTP/1.1 400 Bad Request');
  t.equal(got.headers['content-type'], 'application/json');
  t.equal(got.headers.connection, 'close');
  t.equal(Number(got.headers['content-length']), Buffer.byteLength(got.body), 'content-length is the body');
  const body = (got.exitCode === 0 ? JSON.parse(got.body) : {}) as { error?: string; message?: string };
  t.equal(body.error, 'bad_request');
  t.match(body.message, said);
}

export interface SilentClient {
  /** The client's local port: how the server side of its connection is found. */
  readonly localPort: number;
  stop(): void;
}

/**
 * A client that sends `request` and then never reads (paused from the start) nor closes its side
 * (half-open allowed); with `keepSending`, it sends 1 KiB every 50 ms after it for ever. Stopped
 * by the test.
 */
export async function silentAfterRequest(port: number, request: string, keepSending: boolean): Promise<SilentClient> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.pause();
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(request);
  const filler = Buffer.alloc(1024, 0x61);
  const timer = keepSending ? setInterval(() => socket.writable && socket.write(filler), 50) : undefined;
  return {
    localPort: socket.localPort as number,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/**
 * `count` clients that send `request` and reset their connection (RST) at once, half of them
 * right after the write and half as the first byte of an answer arrives; resolves once all are closed.
 */
export async function resetAtOnce(port: number, request: string, count: number): Promise<void> {
  const closed: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    closed.push(once(socket, 'close'));
    socket.once('connect', () => {
      socket.write(request);
      if (i % 2 === 0) socket.resetAndDestroy();
      else socket.once('data', () => socket.resetAndDestroy());
    });
  }
  await Promise.all(closed);
}

/**
 * `tries` raw TCP clients that each send `head` and a body of `bodyBytes` whole before reading
 * (as Python's http.client does): the status line each read, or how it failed (sendAllThenRead).
 */
export async function uploadsThenRead(port: number, head: string, bodyBytes: number, tries: number): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < tries; i++) {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    outcomes.push(await sendAllThenRead(socket, 'connect', head, bodyBytes));
  }
  return outcomes;
}

/** The connections a server in this process still holds on `port` once none are left, or `boundMs` have passed. */
export async function heldAfter(port: number, boundMs: number): Promise<number[]> {
  const until = Date.now() + boundMs;
  let held = await heldConnectionsOn(process.pid, port);
  while (held.length > 0 && Date.now() < until) {
    await sleep(100);
    held = await heldConnectionsOn(process.pid, port);
  }
  return held;
}
