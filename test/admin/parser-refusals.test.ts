// What the admin port's HTTP/1.1 parser refuses (a broken header line, a head over Node's
// limit or over 16 KiB as written, in empty lines or whitespace, Content-Length beside Transfer-Encoding), and an Expect it cannot meet, are answered as
// every admin error is: a status with a JSON body {error, message} and x-meshcar-error, then the
// connection closes.
// Node's own answers are bare (no body), which is what this port gave. Raw sockets against a
// real admin server in this process.

import t from 'tap';
import net from 'node:net';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';

const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '# nothing\n' }),
};

/** Sends `bytes` and collects everything the server writes until it closes (or 5 s pass). */
function exchange(port: number, bytes: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 5000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes);
  });
}

t.test('parser refusals on the admin port: JSON, coded, closed', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  const cases: Array<[string, string, number, string]> = [
    ['a broken header line', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nbroken header\r\n\r\n', 400, 'bad_request'],
    ['a head over the limit', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'a'.repeat(25_000)}\r\n\r\n`, 431, 'headers_too_large'],
    // over the limit as written, though Node counts only names and values (both were served 200)
    ['16,000 empty field lines (64 KB)', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${'X:\r\n'.repeat(16_000)}\r\n`, 431, 'headers_too_large'],
    ['1 MiB of whitespace before a value', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A:${' '.repeat(1 << 20)}y\r\n\r\n`, 431, 'headers_too_large'],
    ['an HTTP/1.1 request without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 400, 'bad_request'],
    ['Content-Length beside Transfer-Encoding', 'POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad_request'],
    // Node drops a CONNECT without a word when nothing listens for 'connect'
    ['CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 405, 'method_not_allowed'],
    // Node answers an Expect it cannot meet with a bare 417; its body unread, the connection closes
    ['Expect: foo', 'POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: foo\r\nContent-Length: 5\r\n\r\n', 417, 'expectation_failed'],
  ];
  for (const [what, bytes, status, code] of cases) {
    const { text, closed } = await exchange(admin.port, bytes);
    t.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${status}`);
    t.match(text, new RegExp(`x-meshcar-error: ${code}`, 'i'), `${what}: x-meshcar-error ${code}`);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    let parsed: { error?: string; message?: string } = {};
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      // left empty: the assertion below says what came
    }
    t.equal(parsed.error, code, `${what}: a JSON body naming the code (${JSON.stringify(body.slice(0, 80))})`);
    t.ok(closed, `${what}: the connection closed`);
  }
  const { text } = await exchange(admin.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 200 /, 'the port answers on');
  // a head within the limit, with a 200 KB body in the same write (Node reads 64 KiB at a time)
  const withBody = await exchange(admin.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ${'a'.repeat(15_000)}\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n${'b'.repeat(200_000)}`);
  t.match(withBody.text, /^HTTP\/1\.1 200 /, 'a 15 KB head with a 200 KB body after it: served');
});
