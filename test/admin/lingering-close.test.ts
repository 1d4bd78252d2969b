// A refusal the admin port answers while the client is still sending, on a connection that
// then closes (417 to an Expect it cannot meet, 400 to a broken head or to an HTTP/1.1 request
// without Host, 431 to a head still coming), reaches a client that sends its whole request
// before it reads (Python's http.client, urllib, requests): the port half-closes and reads and
// drops what still comes for a bounded while (src/http/lingering-close.ts, as the inbound and
// outbound do), where closing at once had the kernel reset the client's next bytes and its
// write failed (EPIPE, ECONNRESET) with the JSON answer unread. Raw sockets against a real
// admin server in this process.

import t from 'tap';
import net from 'node:net';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';
import { sendAllThenRead } from '../helpers/raw-http.js';

const MB = 1024 * 1024;
const TRIES = 20;
// more than the kernel's buffers of both sockets hold, less than the linger's byte bound
const UPLOAD = 8 * MB;

const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '# nothing\n' }),
  reload: async () => ({ applied: [] }),
};

async function tries(port: number, head: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < TRIES; i++) {
    const outcome = await sendAllThenRead(net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }), 'connect', head, UPLOAD);
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  return counts;
}

t.test('an admin refusal that closes the connection reaches a client still sending its request', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  const { port } = admin;
  t.same(await tries(port, `POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: foo\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 417 Expectation Failed': TRIES }, `417 to an Expect it cannot meet: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, `POST /reload HTTP/1.1\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 400 Bad Request': TRIES }, `400 to an HTTP/1.1 request without Host: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, `POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nbroken header\r\nContent-Length: ${UPLOAD}\r\n\r\n`), { 'HTTP/1.1 400 Bad Request': TRIES }, `400 to a broken head: ${TRIES} of ${TRIES} read it`);
  t.same(await tries(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: '), { 'HTTP/1.1 431 Request Header Fields Too Large': TRIES }, `431 to a head still coming: ${TRIES} of ${TRIES} read it`);
});
