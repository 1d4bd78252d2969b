// A caller that never reads its socket and keeps asking for bodyless answers with large heads:
// the inbound (meshcar codec) stops reading it once 4 MiB wait to leave the socket (DATA waits
// at 1 MiB; answers' heads waited nowhere). Answers' HEADERS queued without that up to
// maxOutboundBuffer (16 MiB) a connection, ~19 MB of memory each, 1024 connections allowed a
// caller (the hostile-caller review). Real inbound, a raw mTLS HTTP/2 caller that never reads,
// an HTTP/1.1 app answering 204 with a 5,000-byte field (too large for HPACK's table).

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { startInbound } from '../helpers/inbound-fixture.js';
import { frame, settingsFrame, FRAME, FLAG } from '../helpers/raw-h2.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** GET https / with :authority orders, HPACK (static-table indexes and one literal). */
const GET = Buffer.from([0x82, 0x87, 0x84, 0x01, 0x06, ...Buffer.from('orders')]);
const REQUESTS = 6_000;

t.test('a caller that never reads is not read either, once its answers back up', async (t) => {
  let appRequests = 0;
  const fx = await startInbound({
    codec: 'meshcar',
    app: {
      protocol: 'http',
      handler: (req, res) => {
        appRequests++;
        req.resume();
        res.writeHead(204, { 'x-policy': 'p'.repeat(5_000) });
        res.end();
      },
    },
  });
  t.teardown(() => fx.close());
  const caller = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: ['h2'], ...(await fx.tlsOptions()) });
  caller.on('error', () => {});
  t.teardown(() => caller.destroy());
  await once(caller, 'secureConnect');
  caller.write(Buffer.concat([PREFACE, settingsFrame([]), frame(FRAME.SETTINGS, FLAG.ACK, 0)]));
  caller.pause(); // never reads
  let closed = false;
  caller.on('close', () => (closed = true));
  // requests in batches of 100, each once the last has reached the app (streams end as their
  // answers are queued: the concurrency limit does not stop this), until one no longer does
  // (polled, each wait bounded at 1 s) or 6,000 were sent: ~30 MB of answers' heads
  let sent = 0;
  let stalled = false;
  for (let id = 1; sent < REQUESTS && !closed && !stalled; ) {
    const parts: Buffer[] = [];
    for (let i = 0; i < 100; i++, id += 2, sent++) parts.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, GET));
    caller.write(Buffer.concat(parts));
    const until = Date.now() + 1_000;
    while (appRequests < sent && !closed && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    stalled = appRequests < sent;
  }
  // past 4 MiB of heads (~800 answers, and what the reads before the pause brought in: ~1,800
  // seen); without the pause 4,300 and on (16 MiB of heads, then the flood cut)
  t.ok(appRequests < 3_000, `the inbound stopped reading the caller: ${appRequests} of ${sent} requests reached the app`);
  t.notOk(closed, 'and kept the connection: a slow reader is not cut');
});
