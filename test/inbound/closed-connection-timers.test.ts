// A closed caller connection leaves nothing of its lifetime timer behind (src/timer-clear.ts,
// used by src/wall-clock-timer.ts). Each verified connection has an unref'd timer until its
// caller's certificate expires (an HTTP/2 one first until its maximum age): a duration no other
// connection has, to the millisecond. Node deletes the list it keeps per duration when a ref'd
// timer leaves it empty, but not an unref'd one: the empty list (~0.8 KB) stayed until the
// duration's end, hours for a day-long certificate, so every connection a caller opened and
// closed left one or two (a soak: 1,000 connections, 1,500 lists and 7.5 MB more after forced
// GCs). Real mTLS callers (HTTP/1.1 and HTTP/2) open and close connections; Node's timer lists
// are counted in heap snapshots (helpers/timer-lists.ts), before and after.

import t from 'tap';
import tls from 'node:tls';
import { startInbound } from '../helpers/inbound-fixture.js';
import { timerLists } from '../helpers/timer-lists.js';

const CONNECTIONS = 60;

// the timers are the listener's, whichever codec: the default one only (the snapshots take time)
t.test('closed connections leave no timer lists behind', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  // one HTTP/1.1 request, or an HTTP/2 preface and SETTINGS, then the connection closes
  const connection = (alpn: 'h2' | 'http/1.1') =>
    new Promise<void>((resolve) => {
      const socket = tls.connect({ ...tlsOptions, host: '127.0.0.1', port: fx.port, ALPNProtocols: [alpn] }, () =>
        socket.write(alpn === 'h2' ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0' : 'GET /echo HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n'),
      );
      socket.on('data', () => alpn === 'h2' && socket.end());
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  const round = async () => {
    for (let i = 0; i < CONNECTIONS; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => connection(k % 2 === 0 ? 'h2' : 'http/1.1')));
    const until = Date.now() + 3000;
    while (fx.inbound.connections > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  await round(); // the listener's own timers are set up
  const before = await timerLists();
  await round();
  t.equal(fx.inbound.connections, 0, 'every connection closed');
  const after = await timerLists();
  // seen without it: 91 more for 60 connections (one per HTTP/1.1 connection, two per HTTP/2)
  t.ok(after - before < 10, `${after - before} more timer lists after ${CONNECTIONS} connections (${before} before)`);
});
