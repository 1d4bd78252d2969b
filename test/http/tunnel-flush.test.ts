// closeWhenFlushed (src/http/tunnel-reset.ts), used by both sidecars when one side of a
// WebSocket tunnel closes: the other side closes once what is queued toward it has left, the
// other side's FIN behind it, and is reset if its reader takes longer than TUNNEL_FLUSH_MS.
// The inbound destroyed the caller's side at once when its app closed, throwing away what was
// still queued: a caller reading slowly got a clean end up to 64 KiB short of the app's data
// (a review saw it 1 run in 20). Real TCP sockets; the reader's pace is the test's.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { closeWhenFlushed, TUNNEL_FLUSH_MS } from '../../src/http/tunnel-reset.js';

const SIZE = 16 << 20;

/** A connected pair: `writer` (the tunnel's side) and `reader` (its peer, paused). */
async function pair(t: Tap.Test): Promise<{ writer: net.Socket; reader: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const reader = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  reader.pause();
  const [writer] = (await once(server, 'connection')) as [net.Socket];
  t.teardown(() => {
    writer.destroy();
    reader.destroy();
  });
  return { writer, reader };
}

t.test('what is queued toward a slow reader reaches it whole, then a clean end', async (t) => {
  const { writer, reader } = await pair(t);
  writer.write(Buffer.alloc(SIZE, 0x61));
  writer.end(); // the other side's FIN, relayed behind its data
  t.ok(writer.writableLength > 0, `bytes still queued when the other side closes (${writer.writableLength})`);
  closeWhenFlushed(writer);
  t.notOk(writer.destroyed, 'not destroyed with bytes queued');
  let got = 0;
  reader.on('data', (chunk: Buffer) => (got += chunk.length));
  const [ended, closed] = [once(reader, 'end'), once(writer, 'close')];
  reader.resume();
  await ended;
  t.equal(got, SIZE, 'every byte arrived before the end');
  await closed;
});

t.test('a reader that takes no more is reset once the flush bound has passed, not ended', { timeout: TUNNEL_FLUSH_MS + 10_000 }, async (t) => {
  const { writer, reader } = await pair(t);
  writer.write(Buffer.alloc(SIZE, 0x62));
  writer.end();
  const started = Date.now();
  closeWhenFlushed(writer);
  await once(writer, 'close');
  t.ok(Date.now() - started >= TUNNEL_FLUSH_MS - 50, `held for the bound (${Date.now() - started} ms)`);
  // Linux reads a reset behind unread data as an end: a write of no bytes then asks the kernel
  // which it was (as the calling sidecar does, relayEnd): it fails on a reset connection
  const seen: string[] = [];
  reader.on('error', (err: NodeJS.ErrnoException) => seen.push(`error:${err.code}`));
  reader.on('end', () => {
    seen.push('end');
    reader.write(Buffer.alloc(0), (err) => {
      seen.push(err ? 'reset' : 'half-closed');
      reader.destroy();
    });
  });
  reader.resume();
  await once(reader, 'close');
  t.equal(seen.at(-1), 'reset', `the reader is told the stream was cut, not that it ended (${seen.join(', ')})`);
});
