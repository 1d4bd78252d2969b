// An HTTP/1.1 request offering `Upgrade: h2c` alone (Java's HttpClient on any http:// URI, curl
// --http2) is served as a plain request in HTTP/1.1: before, the outbound answered 400 "Upgrade:
// h2c is not supported", where the app's call worked straight to its upstream. The upstream
// sees neither the offer's fields nor their Connection options, the connection stays open for
// the next request, a body and requests pipelined after it in the same write all arrive, and an
// offer of h2c beside another protocol is still refused. Real curl, raw sockets, a real upstream
// over mTLS.

import t from 'tap';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startOutboundToUpstream, type Echo } from '../helpers/outbound-fixture.js';

const run = promisify(execFile);

/** Writes `bytes` to the outbound port in one write and reads until the outbound closes (the last request says Connection: close). */
async function rawExchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(bytes);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  const timer = setTimeout(() => socket.destroy(), 10_000);
  await new Promise((resolve) => socket.once('close', resolve));
  clearTimeout(timer);
  return text;
}

/** The JSON bodies (the upstream's echoes) in a run of HTTP/1.1 answers, and their statuses. */
function answers(text: string): { statuses: number[]; echoes: Echo[] } {
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  const echoes = [...text.matchAll(/\{"method".*?"callerId":"[^"]*"\}/g)].map((m) => JSON.parse(m[0]) as Echo);
  return { statuses, echoes };
}

t.test('curl --http2 to the outbound: answered in HTTP/1.1, the offer not passed on, one connection for two requests', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const { stdout, stderr } = await run('curl', ['-sv', '--http2', '-H', 'Host: payments', '-w', '\n%{http_code} %{http_version} %{num_connects}\n', `http://127.0.0.1:${fx.port}/echo?first`, `http://127.0.0.1:${fx.port}/echo?second`], { timeout: 15_000 });
  t.match(stderr, /> Upgrade: h2c/, 'curl offered h2c');
  const summaries = stdout.split('\n').filter((line) => /^\d{3} /.test(line));
  t.same(summaries, ['200 1.1 1', '200 1.1 0'], 'both answered 200 in HTTP/1.1, the second on the same connection');
  const echoes = answers(stdout).echoes;
  t.equal(echoes.length, 2, 'both reached the upstream');
  for (const echo of echoes) {
    t.notOk('upgrade' in echo.headers || 'http2-settings' in echo.headers, `${echo.path}: no Upgrade or HTTP2-Settings passed on`);
    t.notMatch(String(echo.headers.connection ?? ''), /upgrade|http2-settings/i, `${echo.path}: nor their Connection options`);
  }
});

t.test('a body after the offer, and a request pipelined behind it in the same write, all arrive', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const text = await rawExchange(
    fx.port,
    'POST /echo?upload HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 11\r\nX-Kept: yes\r\n\r\nhello world' +
      'GET /echo?next HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n',
  );
  const { statuses, echoes } = answers(text);
  t.same(statuses, [200, 200], `two answers (${text.slice(0, 200)})`);
  t.same(
    echoes.map((e) => [e.method, e.path, e.body]),
    [
      ['POST', '/echo?upload', 'hello world'],
      ['GET', '/echo?next', ''],
    ],
    'the upload whole, then the pipelined request',
  );
  t.equal(echoes[0]?.headers['x-kept'], 'yes', 'the other fields kept');
  t.notOk('upgrade' in (echoes[0]?.headers ?? {}), 'no Upgrade passed on');
});

t.test('Connection: close beside the offer is kept; h2c offered beside another protocol is still refused', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const closed = await rawExchange(fx.port, 'GET /echo HTTP/1.1\r\nHost: payments\r\nConnection: close, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n');
  t.same(answers(closed).statuses, [200], 'answered, and the connection closed after it (the read ended)');
  t.match(closed, /\r\nconnection: close\r\n/i, 'saying so');
  const mixed = await rawExchange(fx.port, 'GET /echo HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  t.match(mixed, /^HTTP\/1\.1 400 /, 'Upgrade: websocket, h2c is 400');
  t.match(mixed, /Upgrade: h2c is not supported/, 'saying why');
});
