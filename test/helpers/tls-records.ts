// Test helper: a stream's bytes as whole TLS records, for relays that rewrite a handshake's
// records on their way (put an empty ChangeCipherSpec before a caller's certificates, split a
// server's hello): each record is handed over whole, in order, with its index.

import type { Readable } from 'node:stream';

/** Calls `onRecord` with each whole record `from` carries (5-byte header and payload) and its index from 0. */
export function onRecords(from: Readable, onRecord: (record: Buffer, index: number) => void): void {
  let pending = Buffer.alloc(0);
  let index = 0;
  from.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
      const whole = pending.subarray(0, 5 + pending.readUInt16BE(3));
      pending = pending.subarray(whole.length);
      onRecord(whole, index++);
    }
  });
}
