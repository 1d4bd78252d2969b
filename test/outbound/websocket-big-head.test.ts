// A WebSocket handshake whose 101 head is larger than Node's default 16 KiB (a far app's large
// cookies or policy fields), through a whole pair: the inbound relays app answer heads up to
// 64 KiB (answer-head-limit.ts), and the calling outbound's handshake client took only 16 KiB,
// so a 30 KB 101 that the inbound had relayed (its tunnel to the far app open) came to the
// calling app as 502 upstream_reset "Parse Error: Header overflow", blamed on the endpoint.
// The outbound's handshake takes 64 KiB, as its other answers.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startTunnelPair, UPGRADE_HEAD } from '../helpers/tunnel-pair.js';

t.test("a far app's 101 with a 30 KB field reaches the calling app", async (t) => {
  const pair = await startTunnelPair((socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-big: ${'b'.repeat(30_000)}\r\n\r\n`);
    socket.resume();
  });
  t.teardown(() => pair.close());
  const socket = net.connect({ port: pair.outbound.port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(UPGRADE_HEAD);
  let got = '';
  socket.setEncoding('latin1');
  // the whole head, or the connection's end with whatever came
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: string) => {
      got += chunk;
      if (got.includes('\r\n\r\n')) resolve();
    });
    socket.once('close', () => resolve());
  });
  socket.destroy(); // a 502 would keep the connection, and the pair's close would wait for it
  t.match(got, /^HTTP\/1\.1 101 /, `101 relayed (${got.slice(0, 80).replace(/\r\n/g, ' | ')})`);
  t.match(got, /x-big: b{30000}\r\n/i, 'with its field whole');
});
