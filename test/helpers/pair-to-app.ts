// Test helper: a sidecar pair in this process in front of an app the test runs itself (a raw
// TCP app, to send what no real server would): an outbound whose upstream `orders` is an inbound
// over mutual TLS, both on one HTTP/2 codec, closed when the test ends.

import type tap from 'tap';
import { SERVER_ID, startInbound } from './inbound-fixture.js';
import { startOutbound } from './outbound-fixture.js';

export async function startPairToApp(t: typeof tap, appPort: number, codec: 'meshcar' | 'node') {
  const inbound = await startInbound({ externalApp: { protocol: 'http', port: appPort }, codec });
  const outbound = await startOutbound(inbound.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${inbound.port}`], identity: SERVER_ID }], { codec });
  t.teardown(async () => {
    await outbound.close();
    await inbound.close();
  });
  return { inbound, outbound };
}
