// An Upgrade asked for with POST, PUT or PATCH and no body (some WebSocket and upgrade clients
// send one; RFC 9110 ties Upgrade to no method). The outbound writes the request toward the
// peer with node:http's client, which adds `Transfer-Encoding: chunked` to such a method when no
// Content-Length is set and ends it with an empty chunk: the peer's inbound refused it, rightly,
// as "an Upgrade request cannot carry a body" (400), though the app sent none, while the same
// request sent to the inbound itself got its 101. Now such a head says Content-Length: 0: the
// far app reads a POST with no body and no Transfer-Encoding. Real sidecar pair (tunnel-pair.ts).

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

t.test('an Upgrade asked for with POST, PUT or PATCH and no body crosses the pair', async (t) => {
  const heads: string[] = [];
  const pair = await startTunnelPair((socket, head) => {
    heads.push(head);
    socket.write(SWITCHING);
    socket.resume();
  });
  t.teardown(() => pair.close());
  // and as Go's client sends a POST with no body: Content-Length: 0 of its own, kept, not doubled
  for (const [method, extra] of [['POST', ''], ['PUT', ''], ['PATCH', ''], ['POST', 'Content-Length: 0\r\n']] as const) {
    const socket = net.connect({ port: pair.outbound.port, host: '127.0.0.1' });
    t.teardown(() => socket.destroy());
    await once(socket, 'connect');
    socket.write(`${method} /ws HTTP/1.1\r\nHost: orders\r\n${extra}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    let answer = '';
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
        if (answer.includes('\r\n\r\n')) resolve();
      });
      socket.once('close', () => reject(new Error(`closed, having read: ${answer}`)));
    });
    t.match(answer, /^HTTP\/1\.1 101 /, `${method}${extra ? ' with Content-Length: 0' : ''}: switched (${answer.split('\r\n')[0]})`);
    const head = heads.at(-1) ?? '';
    t.match(head, new RegExp(`^${method} /ws HTTP/1\\.1\\r\\n`), `${method}: the far app read it`);
    t.notMatch(head, /transfer-encoding/i, `${method}: with no Transfer-Encoding`);
    t.equal(head.match(/\r\ncontent-length: 0(?=\r\n|$)/gi)?.length, 1, `${method}${extra ? ' with its own Content-Length: 0' : ''}: and one Content-Length: 0`);
    socket.destroy();
  }
});
