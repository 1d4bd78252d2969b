// HPACK string literals raw or Huffman-coded: CPU of encoding and decoding one request head,
// the way a sidecar pair pays it (the outbound encodes, the inbound decodes), with meshcar's own
// encoder and decoder from dist/ (make build first). Heads as an API call carries them: a path,
// a random x-request-id and traceparent, and optionally an 800-character bearer token (a
// never-indexed literal, so it is coded on every request). Process CPU time, 100,000 heads per
// round, three rounds of each alternated.
//   node bench/hpack-huffman.mjs

import { HpackEncoder } from '../dist/h2/hpack/encoder.js';
import { HpackDecoder } from '../dist/h2/hpack/decoder.js';
import { randomBytes } from 'node:crypto';

const HEADS = 100_000;
const ids = Array.from({ length: 1000 }, () => randomBytes(16).toString('hex'));
const tokens = Array.from({ length: 1000 }, () => randomBytes(600).toString('base64url'));

function round(huffman, withToken) {
  const encoder = new HpackEncoder({ huffman });
  const decoder = new HpackDecoder();
  let bytes = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < HEADS; i++) {
    const id = ids[i % 1000];
    const head = [':method', 'GET', ':scheme', 'https', ':authority', 'orders', ':path', `/orders/${i % 1000}`, 'x-request-id', id, 'traceparent', `00-${ids[(i * 7) % 1000]}${ids[(i * 3) % 1000]}-${id.slice(0, 16)}-01`];
    if (withToken) head.push('authorization', `Bearer ${tokens[i % 1000]}`);
    const block = encoder.encode(head);
    bytes += block.length;
    decoder.decode(block);
  }
  const used = process.cpuUsage(start);
  return { us: (used.user + used.system) / HEADS, bytes: bytes / HEADS };
}

for (const withToken of [false, true]) {
  const best = { true: Infinity, false: Infinity };
  let size = {};
  for (let r = 0; r < 3; r++) {
    for (const huffman of [true, false]) {
      const { us, bytes } = round(huffman, withToken);
      best[huffman] = Math.min(best[huffman], us);
      size[huffman] = bytes;
    }
  }
  console.log(`${withToken ? 'with an 800-character bearer token' : 'request id and traceparent'}: Huffman ${best.true.toFixed(2)} µs, ${size.true.toFixed(0)} B; raw ${best.false.toFixed(2)} µs, ${size.false.toFixed(0)} B (least of 3 rounds, encode + decode per head)`);
}
