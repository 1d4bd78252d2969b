// An app that resets its connection mid-upload while the upstream's backpressure holds the
// upload paused (the upstream app reads nothing yet): paused, the app's socket is not read, so
// the reset went unseen until the upstream's idleTimeout (5 min), holding the stream, the far
// app's connection and a descriptor, and the request was recorded as the upstream's 504. The
// outbound now asks the paused connection every second (a write of no bytes fails on a reset
// one): the stream is cancelled and the request recorded as the app's leaving (499) within
// seconds. Raw TCP app (it resets for real), Node core http2 mTLS upstream that never reads.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import { defaultHandler, makePki, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

t.test('an upload held by backpressure whose app resets: cancelled and recorded 499 within seconds', async (t) => {
  const pki = await makePki(TD);
  const held: ServerHttp2Stream[] = [];
  const upstream = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      if (headers[':path'] !== '/stall') return defaultHandler(stream, headers, flags);
      stream.on('error', () => {});
      stream.pause(); // reads nothing: its window closes, and the outbound's with it
      held.push(stream);
    },
  });
  t.teardown(() => upstream.close());
  const fx = await startBalanced(pki, { ports: [upstream.port] });
  t.teardown(() => fx.close());

  const app = net.connect({ host: '127.0.0.1', port: fx.port });
  app.on('error', () => {});
  await once(app, 'connect');
  app.write('POST /stall HTTP/1.1\r\nHost: payments\r\nContent-Length: 1000000000\r\nx-request-id: paused-reset\r\n\r\n');
  await waitUntil(() => held.length === 1, 'the upload reached the upstream');
  // write until the upload stands still: the outbound has stopped reading the app's socket
  const chunk = Buffer.alloc(1 << 16, 0x61);
  for (let stalled = false; !stalled; ) {
    while (app.write(chunk));
    stalled = await Promise.race([once(app, 'drain').then(() => false), new Promise<boolean>((resolve) => setTimeout(resolve, 500, true))]);
  }
  t.ok(app.writableLength > 0, `the app is held back (${app.writableLength} bytes queued)`);
  app.resetAndDestroy();
  await waitUntil(() => fx.observer.requests.some((r) => r.requestId === 'paused-reset'), 'the request recorded', 5_000);
  t.match(fx.observer.requests.find((r) => r.requestId === 'paused-reset'), { status: 499 }, 'recorded as the app leaving (499)');
  await waitUntil(() => (held[0] as ServerHttp2Stream).closed, 'the upstream stream cancelled', 3_000);
  t.ok((held[0] as ServerHttp2Stream).closed, 'the upstream stream is released');
});
