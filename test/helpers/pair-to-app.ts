// Test helper: a sidecar pair in this process in front of an app the test runs itself (a raw
// TCP app, to send what no real server would; an h2c one): an outbound whose upstream `orders`
// is an inbound over mutual TLS, both on one HTTP/2 codec, closed when the test ends; and an
// upload through it as the app beside the outbound sends one.

import http from 'node:http';
import type tap from 'tap';
import { SERVER_ID, startInbound } from './inbound-fixture.js';
import { startOutbound } from './outbound-fixture.js';

export async function startPairToApp(t: typeof tap, appPort: number, codec: 'meshcar' | 'node', protocol: 'http' | 'h2c' = 'http') {
  const inbound = await startInbound({ externalApp: { protocol, port: appPort }, codec });
  const outbound = await startOutbound(inbound.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${inbound.port}`], identity: SERVER_ID }], { codec });
  t.teardown(async () => {
    await outbound.close();
    await inbound.close();
  });
  return { inbound, outbound };
}

/** One POST of `body` to the outbound as the app beside it (plain HTTP/1.1, Host: orders), on a fresh connection. */
export function postUpload(port: number, body: Buffer): Promise<{ status: number; header: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false, headers: { host: 'orders', 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, header: res.headers['x-app'] as string | undefined, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
