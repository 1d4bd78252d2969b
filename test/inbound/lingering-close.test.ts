// An answer the inbound gives an HTTP/1.1 caller while it is still sending, on a connection
// that then closes (403 before an upload is read, 503 when the app is down, 431 to a head still
// coming), reaches a caller that sends its whole request before it reads (Python's http.client,
// urllib, requests): the inbound half-closes and reads and drops what still comes for a bounded
// while (src/http/lingering-close.ts), where closing at once had the kernel reset the caller's
// next bytes and its write failed (EPIPE, ECONNRESET) with the answer unread. The bounds are
// the outbound's, tested there (test/outbound/lingering-close.test.ts).

import t from 'tap';
import tls from 'node:tls';
import { FRONTEND_ID, startInbound } from '../helpers/inbound-fixture.js';
import { sendAllThenRead } from '../helpers/raw-http.js';

const MB = 1024 * 1024;
const TRIES = 20;
// more than the kernel's buffers of both sockets hold, less than the linger's byte bound
const UPLOAD = 8 * MB;

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

async function tries(port: number, tlsOptions: tls.ConnectionOptions, head: string): Promise<Record<string, number>> {
  const outcomes: string[] = [];
  for (let i = 0; i < TRIES; i++) {
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], allowHalfOpen: true, ...tlsOptions });
    outcomes.push(await sendAllThenRead(socket, 'secureConnect', head, UPLOAD));
  }
  return tally(outcomes);
}

t.test('an early answer that closes the connection reaches an HTTP/1.1 caller still sending', async (t) => {
  const fx = await startInbound({ authorize: [{ from: [FRONTEND_ID], methods: ['POST'], paths: ['/upload'] }] });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  t.same(await tries(fx.port, tlsOptions, `POST /elsewhere HTTP/1.1\r\nhost: orders\r\ncontent-length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 403 Forbidden': TRIES }, `403 before the upload is read: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(fx.port, tlsOptions, 'GET /x HTTP/1.1\r\nhost: orders\r\nx-big: '), { 'HTTP/1.1 431 Request Header Fields Too Large': TRIES }, `431 to a head still coming: ${TRIES} of ${TRIES} read it`);
});

t.test('the app down: the 503 reaches a caller still uploading', async (t) => {
  const fx = await startInbound({ appDown: true });
  t.teardown(() => fx.close());
  t.same(await tries(fx.port, await fx.tlsOptions(), `POST /upload HTTP/1.1\r\nhost: orders\r\ncontent-length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 503 Service Unavailable': TRIES }, `${TRIES} of ${TRIES} read it`);
});
