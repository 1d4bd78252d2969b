// An Upgrade the far app refuses (403 with a body) and whose body stops short: the outbound's
// record says the answer was cut (upstream_reset, as a plain answer cut midway is), not a whole
// 403; and an upstream that goes quiet midway is held to the outbound's idleTimeout, as any
// answer's body is: nothing watched it once the head was in, so both connections (and the
// drain) waited on the peer's own limit, or for ever against an upstream without one (the
// tunnel review). A chunked refusal cut short resets the app's connection: its body goes on
// unframed, and a FIN would end it as whole. Through a real pair (outbound -> mTLS -> inbound -> raw TCP far app).

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startTunnelPair, UPGRADE_HEAD, endings, closedWithin } from '../helpers/tunnel-pair.js';
import { waitUntil } from '../helpers/outbound-fixture.js';

/** A far app that refuses with a 100-byte body, sends 3 bytes of it and goes quiet. */
const refuseShort = (socket: net.Socket) => socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nabc');

async function callingApp(port: number) {
  const app = net.connect({ port, host: '127.0.0.1' });
  await once(app, 'connect');
  const seen = endings(app);
  let text = '';
  app.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  app.write(UPGRADE_HEAD);
  return { app, seen, text: () => text };
}

t.test('a refusal cut short by the inbound is recorded as cut', async (t) => {
  const pair = await startTunnelPair(refuseShort, { inboundIdleTimeoutMs: 1_000 });
  t.teardown(() => pair.close());
  const { app, seen, text } = await callingApp(pair.outbound.port);
  t.teardown(() => app.destroy());
  t.same((await closedWithin(seen, 5_000)).at(-1), 'close', "the app's connection closes once the answer is cut");
  t.match(text(), /^HTTP\/1\.1 403 Forbidden\r\n[^]*\r\n\r\nabc$/, 'the head and the bytes that came were relayed');
  const [record] = await pair.outbound.observer.waitForRequests(1);
  t.same({ status: record?.status, errorCode: record?.errorCode, bytesOut: record?.bytesOut }, { status: 403, errorCode: 'upstream_reset', bytesOut: 3 }, 'recorded as cut, with the bytes that went out');
});

t.test('a chunked refusal cut short reaches the app as a reset, never a clean end', async (t) => {
  // the body goes on with no framing (no chunked, no length: ended by the connection's end),
  // so a FIN gave the app a cut JSON body as whole (the tunnel hunt), as the inbound reset it
  // (the far app's reset) or the outbound's idleTimeout cut it
  for (const [cut, limits] of [
    ['the far app resets', { inboundIdleTimeoutMs: 60_000 }],
    ["the outbound's idleTimeout", { inboundIdleTimeoutMs: 60_000, outboundIdleTimeoutMs: 1_000 }],
  ] as const) {
    const pair = await startTunnelPair(
      (socket) => {
        socket.write('HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"items":[1,2,3,\r\n');
        if (cut === 'the far app resets') setTimeout(() => socket.resetAndDestroy(), 200);
      },
      limits,
    );
    const { app, seen, text } = await callingApp(pair.outbound.port);
    const events = await closedWithin(seen, 10_000);
    app.destroy();
    await pair.close();
    t.match(text(), /^HTTP\/1\.1 403 Forbidden\r\n/, `${cut}: the head was relayed`);
    t.notOk(/transfer-encoding|content-length/i.test(text()), `${cut}: with no framing of its own`);
    t.same(events, ['error:ECONNRESET', 'close'], `${cut}: the app's connection is reset, not ended (a FIN would end the unframed body as whole)`);
  }
});

t.test("a refusal's body that goes quiet is held to the outbound's idleTimeout", async (t) => {
  // the inbound's own limit far off: only the outbound's can end it
  const pair = await startTunnelPair(refuseShort, { inboundIdleTimeoutMs: 60_000, outboundIdleTimeoutMs: 1_000 });
  t.teardown(() => pair.close());
  const started = Date.now();
  const { app, seen } = await callingApp(pair.outbound.port);
  t.teardown(() => app.destroy());
  t.same((await closedWithin(seen, 10_000)).at(-1), 'close', `the app's connection closes (after ${Date.now() - started} ms)`);
  const [record] = await pair.outbound.observer.waitForRequests(1);
  t.same({ status: record?.status, errorCode: record?.errorCode, bytesOut: record?.bytesOut }, { status: 403, errorCode: 'upstream_timeout', bytesOut: 3 }, 'recorded as the upstream going quiet');
  await waitUntil(() => pair.outbound.outbound.inFlight === 0, 'nothing in flight on the outbound (a drain no longer waits on it)');
  t.pass('nothing in flight');
});

t.test("a refusal's long body is relayed whole through both sidecars", async (t) => {
  // the inbound's answer on an upgraded socket got no 'drain' (Node's server takes that listener
  // off at the upgrade): it stopped for good after ~64 KB of the body (the review of this
  // session's tunnel changes); with the idle timeouts it was then recorded as cut
  const size = 4 * 1024 * 1024;
  const pair = await startTunnelPair(
    (socket) => {
      socket.write(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${size}\r\n\r\n`);
      socket.write(Buffer.alloc(size, 0x61));
    },
    { inboundIdleTimeoutMs: 2_000, outboundIdleTimeoutMs: 2_000 },
  );
  t.teardown(() => pair.close());
  const app = net.connect({ port: pair.outbound.port, host: '127.0.0.1' });
  t.teardown(() => app.destroy());
  await once(app, 'connect');
  const seen = endings(app);
  let bodyBytes = -1;
  let head = '';
  app.on('data', (chunk: Buffer) => {
    if (bodyBytes >= 0) {
      bodyBytes += chunk.length;
      return;
    }
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end >= 0) bodyBytes = Buffer.byteLength(head, 'latin1') - end - 4;
  });
  app.write(UPGRADE_HEAD);
  t.same((await closedWithin(seen, 20_000)).at(-1), 'close', 'the connection closes after the answer');
  t.equal(bodyBytes, size, 'every byte of the body reached the app');
  const [outRecord] = await pair.outbound.observer.waitForRequests(1);
  const [inRecord] = await pair.inbound.observer.waitForRequests(1);
  t.same(
    [outRecord, inRecord].map((r) => ({ status: r?.status, errorCode: r?.errorCode, bytesOut: r?.bytesOut })),
    [
      { status: 403, errorCode: undefined, bytesOut: size },
      { status: 403, errorCode: undefined, bytesOut: size },
    ],
    'a whole 403 on both sidecars',
  );
});
