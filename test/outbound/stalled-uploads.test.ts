// An upload that outlives its answer and then stalls: the app answers 413 at once to a POST
// announcing 8 MiB, the caller keeps sending until the upstream's window stops it, then goes
// away. The outbound's pipe had paused the caller's socket, and a paused socket is not read,
// so its FIN or RST went unseen: the upstream stream (the gauge, a circuit slot, the inbound's
// request) was held until an idle timeout, ~60 s. Now an upload that stands still while paused
// for a second after the complete answer is given up: the stream cancelled, the connection
// closed. An upload still moving is left alone. Both codecs, through a real inbound peer.

import t from 'tap';
import net from 'node:net';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { sleep, startOutbound } from '../helpers/outbound-fixture.js';
import { parseResponse } from '../helpers/raw-http.js';

async function waitUntil(check: () => boolean, what: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: a stalled upload after an early answer, then the caller gone`, async (t) => {
    const peer = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          req.on('error', () => {});
          if (req.url === '/early') {
            // answered at once; the body is not read on purpose, so the windows fill up
            res.writeHead(413, { 'content-length': '5' }).end('early');
            return;
          }
          req.resume();
          req.on('end', () => res.end('done'));
        },
      },
    });
    t.teardown(() => peer.close());
    const fx = await startOutbound(peer.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${peer.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => fx.close());
    const streams = () => fx.observer.streams.get('orders') ?? 0;

    const socket = net.connect(fx.port, '127.0.0.1');
    socket.on('error', () => {});
    let received = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 8388608\r\n\r\n');
    const chunk = Buffer.alloc(65536, 97);
    let sent = 0;
    let stalled = false;
    const until = Date.now() + 5000;
    // bounded: at most 8 MiB and 5 s; stops once a write waits 300 ms for 'drain'
    while (sent < 8388608 && !socket.destroyed && Date.now() < until) {
      sent += chunk.length;
      if (socket.write(chunk)) continue;
      stalled = !(await Promise.race([new Promise((r) => socket.once('drain', () => r(true))), sleep(300).then(() => false)]));
      if (stalled) break;
    }
    t.ok(stalled, `the upload stalled (sent ${sent} bytes)`);
    await waitUntil(() => parseResponse(received, false) !== undefined, 'the early answer', 3000).catch(() => {});
    t.equal(parseResponse(received, false)?.status, 413, 'the early answer reached the caller');
    t.equal(streams(), 1, 'the upstream stream is open while the upload is pending');
    socket.destroy();
    const ms = await waitUntil(() => streams() === 0 && fx.outbound.inFlight === 0, 'the upstream stream is released', 4000);
    t.ok(ms < 4000, `released ${ms} ms after the caller went`);
    await waitUntil(() => peer.inbound.inFlight === 0, "the peer's request is over too", 4000);

    // an upload answered early that keeps moving (slowly, never paused) is not cut: it ends,
    // and the connection serves the next request
    const steady = net.connect(fx.port, '127.0.0.1');
    steady.on('error', () => {});
    let steadyText = '';
    steady.setEncoding('latin1');
    steady.on('data', (c: string) => (steadyText += c));
    await new Promise((resolve) => steady.once('connect', resolve));
    steady.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 30\r\n\r\n');
    for (let i = 0; i < 6; i++) {
      await sleep(300); // 1.8 s in all, past the stall bound
      steady.write('abcde');
    }
    await waitUntil(() => steadyText.length > 0, 'the early answer', 3000).catch(() => {});
    t.match(steadyText, /^HTTP\/1\.1 413/, 'answered early');
    t.notOk(steady.destroyed, 'the slow upload was not cut');
    steady.write('POST /next HTTP/1.1\r\nHost: orders\r\nContent-Length: 1\r\n\r\nx');
    await waitUntil(() => /done$/.test(steadyText), 'the next request on the connection is answered', 3000);
    steady.destroy();
  });
}
