// HPACK against nghttp2 (Node's core http2), both ways, over real sockets:
// - Node's http2 client sends requests to a plain TCP server that records the raw bytes; the
//   HEADERS/CONTINUATION blocks, Huffman-coded and full of dynamic-table references, decode with
//   our decoder to exactly what was sent — including after we lowered our table size, which
//   nghttp2 must confirm with a size update that our decoder requires.
// - A hand-written h2 client sends blocks from our encoder (CONTINUATION for a big one) to a Node
//   http2 server, which must see exactly our headers and the never-indexed flags of sensitive
//   ones; the server's responses, encoded by nghttp2, decode with our decoder. The server's
//   SETTINGS_HEADER_TABLE_SIZE makes our encoder emit a size update that nghttp2 must accept.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { HpackDecoder, HpackEncoder } from '../../src/h2/hpack/index.js';
import { frame } from '../helpers/raw-h2.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0x0, HEADERS = 0x1, SETTINGS = 0x4, CONTINUATION = 0x9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
const HEADER_TABLE_SIZE = 0x1;


function settings(entries: Array<[number, number]>): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(SETTINGS, 0, 0, payload);
}

interface Frame { type: number; flags: number; stream: number; payload: Buffer }

/** Splits whole frames off the front of `buf`; returns them and the unconsumed tail. */
function parseFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let pos = 0;
  while (buf.length - pos >= 9) {
    const length = buf.readUIntBE(pos, 3);
    if (buf.length - pos < 9 + length) break;
    frames.push({ type: buf[pos + 3]!, flags: buf[pos + 4]!, stream: buf.readUInt32BE(pos + 5) & 0x7fffffff, payload: buf.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  return { frames, rest: buf.subarray(pos) };
}

/** Header block fragment of a HEADERS frame: without padding and priority fields. */
function fragmentOf(f: Frame): Buffer {
  let start = 0;
  let end = f.payload.length;
  if (f.flags & PADDED) {
    end -= f.payload[0]!;
    start = 1;
  }
  if (f.flags & PRIORITY) start += 5;
  return f.payload.subarray(start, end);
}

/**
 * Feeds frames in wire order: reassembles HEADERS + CONTINUATION into blocks and hands each to
 * `onBlock`, and every other frame to `onFrame` (SETTINGS handling lives with the caller).
 */
function blockAssembler(onBlock: (stream: number, block: Buffer) => void, onFrame: (f: Frame) => void) {
  let pending: Buffer[] | null = null;
  let pendingStream = 0;
  return (f: Frame): void => {
    if (f.type === HEADERS || (f.type === CONTINUATION && pending !== null)) {
      if (f.type === HEADERS) {
        pending = [];
        pendingStream = f.stream;
      }
      pending!.push(f.type === HEADERS ? fragmentOf(f) : f.payload);
      if (f.type === CONTINUATION) onFrame(f); // callers may count them
      if (f.flags & END_HEADERS) {
        onBlock(pendingStream, Buffer.concat(pending!));
        pending = null;
      }
      return;
    }
    onFrame(f);
  };
}

const pseudo = (list: string[]) => list.filter((_, i) => i % 2 === 0).map((n, i) => [n, list[i * 2 + 1]]).filter(([n]) => n!.startsWith(':'));
const withoutDate = (list: string[]) => list.flatMap((n, i) => (i % 2 === 0 && n !== 'date' ? [n, list[i + 1]!] : []));
const regular = (list: string[]) => list.flatMap((n, i) => (i % 2 === 0 && !n.startsWith(':') ? [n, list[i + 1]!] : []));

t.test('nghttp2 encodes (Node http2 client), our decoder decodes, table size lowered midway', async (t) => {
  const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  const decoded: Array<{ stream: number; list: string[]; first: number; length: number }> = [];
  let acked = 0;
  let continuations = 0;
  const server = net.createServer((socket) => {
    let buf: Buffer = Buffer.alloc(0);
    let started = false;
    const feed = blockAssembler(
      (stream, block) => decoded.push({ stream, list: decoder.decode(block), first: block[0]!, length: block.length }),
      (f) => {
        if (f.type === CONTINUATION) continuations++;
        if (f.type === SETTINGS && f.flags & ACK) {
          decoder.setMaxTableSize(256); // our SETTINGS below now applies
          acked++;
        } else if (f.type === SETTINGS) socket.write(frame(SETTINGS, ACK, 0));
      },
    );
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!started) {
        if (buf.length < PREFACE.length) return;
        t.same(buf.subarray(0, PREFACE.length), PREFACE);
        buf = buf.subarray(PREFACE.length);
        started = true;
        socket.write(settings([[HEADER_TABLE_SIZE, 256]]));
      }
      const { frames, rest } = parseFrames(buf);
      buf = rest;
      for (const f of frames) feed(f);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});

  const sent: Array<Record<string, string | string[]>> = [];
  const send = (path: string, extra: Record<string, string | string[]>) => {
    const headers = { ':path': path, 'user-agent': 'meshcar-test/1.0', 'x-repeat': 'the same value every time', ...extra };
    sent.push(headers);
    client.request(headers, { endStream: true }).on('error', () => {});
  };
  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(cond(), 'condition reached');
  };
  send('/a', { authorization: 'Bearer abc', cookie: 'a=1', 'x-multi': ['one', 'two'] });
  send('/a', { authorization: 'Bearer abc', cookie: 'a=1', 'x-multi': ['one', 'two'] });
  send('/b?query=string&with=Huffman', { 'content-type': 'application/grpc', te: 'trailers' });
  await waitFor(() => decoded.length === 3 && acked === 1);
  send('/c', { 'x-big': 'B'.repeat(20_000) }); // more than a frame: CONTINUATION
  send('/c', { 'x-repeat-2': 'also repeated', 'x-bin': '\u00e9t\u00e9 \u00ff' });
  send('/c', { 'x-repeat-2': 'also repeated' });
  await waitFor(() => decoded.length === 6);

  decoded.forEach(({ stream, list }, i) => {
    t.equal(stream, i * 2 + 1);
    const expected = Object.entries(sent[i]!).filter(([n]) => !n.startsWith(':')).flatMap(([n, v]) => (Array.isArray(v) ? v.flatMap((x) => [n, x]) : [n, v]));
    t.same(regular(list), expected, `request ${i + 1}: regular headers, in order`);
    t.same(Object.fromEntries(pseudo(list)), { ':method': 'GET', ':authority': `127.0.0.1:${port}`, ':scheme': 'http', ':path': sent[i]![':path'] });
  });
  t.ok(decoded.slice(3).some((d) => (d.first & 0xe0) === 0x20), 'nghttp2 sent a table size update after our SETTINGS');
  t.ok(continuations >= 1, `the 20 KB header came with ${continuations} CONTINUATION frame(s)`);
  t.ok(decoded[1]!.length < decoded[0]!.length / 2, `the repeated request is mostly references (${decoded[1]!.length} vs ${decoded[0]!.length} octets)`);
  t.ok(decoder.dynamicTableMaxSize <= 256, `table limited to ${decoder.dynamicTableMaxSize}`);
  client.destroy();
  server.close();
});

t.test('our encoder → nghttp2 (Node http2 server), and its responses → our decoder', async (t) => {
  for (const serverTableSize of [4096, 256]) {
    const received: Array<{ raw: string[]; sensitive: string[] }> = [];
    const server = http2.createServer({ settings: { headerTableSize: serverTableSize }, maxHeaderListPairs: 256 });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      received.push({ raw: rawHeaders, sensitive: [...((headers as Record<symbol, string[] | undefined>)[http2.sensitiveHeaders] ?? [])] });
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-echo': String(headers[':path']), 'set-cookie': ['s=1', 's2=2'], 'x-same': 'repeated response value' }, { endStream: true });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');

    const encoder = new HpackEncoder({ sensitiveHeaders: ['x-secret'] });
    const decoder = new HpackDecoder();
    const responses = new Map<number, string[]>();
    let peerSettings = false;
    const feed = blockAssembler(
      (stream, block) => responses.set(stream, decoder.decode(block)),
      (f) => {
        if (f.type !== SETTINGS || f.flags & ACK) return;
        for (let i = 0; i + 6 <= f.payload.length; i += 6) {
          if (f.payload.readUInt16BE(i) === HEADER_TABLE_SIZE) encoder.setPeerMaxTableSize(f.payload.readUInt32BE(i + 2));
        }
        socket.write(frame(SETTINGS, ACK, 0));
        peerSettings = true;
      },
    );
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      const { frames, rest } = parseFrames(Buffer.concat([buf, chunk]));
      buf = rest;
      for (const f of frames) if (f.type !== DATA) feed(f);
    });
    socket.write(Buffer.concat([PREFACE, settings([])]));
    for (let i = 0; i < 200 && !peerSettings; i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(peerSettings, 'the server sent its SETTINGS');

    const authority = `127.0.0.1:${port}`;
    const requests: string[][] = [
      [':method', 'GET', ':scheme', 'http', ':authority', authority, ':path', '/one', 'authorization', 'Basic dXNlcjpwYXNz', 'cookie', 'short=1', 'x-repeat', 'same'],
      [':method', 'POST', ':scheme', 'http', ':authority', authority, ':path', '/one', 'x-repeat', 'same', 'x-secret', 'hunter2', 'cookie', 'long-cookie=' + 'c'.repeat(40)],
      [':method', 'GET', ':scheme', 'http', ':authority', authority, ':path', '/two?x=1', 'x-big', 'Z'.repeat(40_000), 'x-latin1', 'caf\u00e9 \u00ff'],
      [':method', 'GET', ':scheme', 'http', ':authority', authority, ':path', '/one', 'x-repeat', 'same', 'x-forwarded-client-cert', 'By=spiffe://mesh/ns/a/sa/b;Hash=abcdef'],
      [':method', 'GET', ':scheme', 'http', ':authority', authority, ':path', '/one', 'x-repeat', 'same', 'x-forwarded-client-cert', 'By=spiffe://mesh/ns/a/sa/b;Hash=abcdef'],
    ];
    requests.forEach((list, i) => {
      const block = encoder.encode(list);
      if (i === 0 && serverTableSize === 256) t.equal(block[0]! & 0xe0, 0x20, 'our first block opens with a size update');
      // Split into HEADERS + CONTINUATION at 16384 octets, the default SETTINGS_MAX_FRAME_SIZE.
      const frames: Buffer[] = [];
      for (let at = 0; at < block.length || at === 0; at += 16384) {
        const last = at + 16384 >= block.length;
        frames.push(frame(at === 0 ? HEADERS : CONTINUATION, (at === 0 ? END_STREAM : 0) | (last ? END_HEADERS : 0), i * 2 + 1, block.subarray(at, at + 16384)));
      }
      t.equal(frames.length, i === 2 ? 3 : 1, `request ${i + 1} in ${frames.length} frame(s)`);
      socket.write(Buffer.concat(frames));
    });
    for (let i = 0; i < 500 && responses.size < requests.length; i++) await new Promise((r) => setTimeout(r, 10));

    t.equal(received.length, requests.length, `table ${serverTableSize}: nghttp2 accepted every block`);
    received.forEach(({ raw, sensitive }, i) => {
      t.same(raw, requests[i], `request ${i + 1} arrived exactly`);
      const expected = ['authorization', 'cookie', 'x-secret'].filter((n) => requests[i]!.includes(n) && !(n === 'cookie' && i === 1));
      t.same(sensitive.sort(), expected.sort(), `request ${i + 1}: never-indexed as nghttp2 saw them`);
    });
    t.ok(encoder.dynamicTableSize <= serverTableSize);
    for (let i = 0; i < requests.length; i++) {
      const list = responses.get(i * 2 + 1) ?? [];
      t.same(pseudo(list), [[':status', '200']], `response ${i + 1}: status`);
      t.same(withoutDate(regular(list)), ['content-type', 'text/plain', 'x-echo', requests[i]![7]!, 'set-cookie', 's=1', 'set-cookie', 's2=2', 'x-same', 'repeated response value'], `response ${i + 1}: fields`);
    }
    socket.destroy();
    server.close();
  }
});
