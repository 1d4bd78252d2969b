// An app's HTTP/1.1 request whose method Node's HTTP/1.1 parser does not know (Varnish's BAN, a
// lower-case `get`: RFC 9110 allows any token, llhttp takes a fixed list) is answered 501
// `unsupported_method`, naming the method, the ones the parser takes and that HTTP/2 to the
// same port carries any: before, 400 "the request is not valid HTTP/1.1 (HPE_INVALID_METHOD)",
// blaming a request that worked straight to the app. Over h2c the method does reach the
// upstream. Bytes that are no request line stay 400. (Pipelined behind a request still
// unanswered, any refusal closes the connection after the answers before it instead.) Raw
// sockets, a real upstream over mTLS.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import http2 from 'node:http2';
import { startOutboundToUpstream, h2cRequest, type Echo } from '../helpers/outbound-fixture.js';

/** Writes `bytes` in one write and reads until the outbound closes the connection. */
async function rawExchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(Buffer.from(bytes, 'latin1'));
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => {});
  const timer = setTimeout(() => socket.destroy(), 10_000);
  await new Promise((resolve) => socket.once('close', resolve));
  clearTimeout(timer);
  return text;
}

t.test('BAN over HTTP/1.1: 501 unsupported_method, saying what the parser takes and where it can go', async (t) => {
  const { fx, upstream } = await startOutboundToUpstream(t);
  const text = await rawExchange(fx.port, 'BAN /cache/x HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 501 /, '501');
  t.match(text, /\r\nx-meshcar-error: unsupported_method\r\n/i, 'its code in the header');
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: string; message: string };
  t.equal(body.error, 'unsupported_method', 'and the body');
  t.match(body.message, /^the method BAN is not one of the \d+ Node's HTTP\/1\.1 parser takes \(case-sensitive: ACL, .*PURGE, .*\); send it over HTTP\/2 with prior knowledge \(h2c\) to this port, which takes any method$/, body.message);
  t.equal(upstream.requests, 0, 'nothing went upstream');
});

t.test('a lower-case method on a kept-alive connection after a good request: 501 naming it as sent', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const socket = net.connect(fx.port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write('GET /echo HTTP/1.1\r\nHost: payments\r\n\r\n');
  const until = performance.now() + 5_000;
  while (!text.includes('"callerId"') && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
  socket.write('get /echo HTTP/1.1\r\nHost: payments\r\n\r\n');
  await new Promise((resolve) => socket.once('close', resolve));
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  t.same(statuses, [200, 501], 'the good one answered, then the refusal');
  t.match(text, /"message":"the method get is not one of the/, 'naming the method as sent');
});

t.test('a known method split across two reads is not named by its tail', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const socket = net.connect(fx.port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  await once(socket, 'connect');
  socket.write('GET');
  await new Promise((r) => setTimeout(r, 100)); // a read of its own
  socket.write('GET /echo HTTP/1.1\r\nHost: payments\r\n\r\n');
  await once(socket, 'close');
  t.match(text, /^HTTP\/1\.1 400 /, 'a malformed request (GETGET), as before');
  t.notMatch(text, /the method GET is not one/, 'not "the method GET is not one of" the methods it takes');
});

t.test('bytes that are no request line are still 400 bad_request', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const text = await rawExchange(fx.port, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03junk\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 400 /, '400');
  t.match(text, /the request is not valid HTTP\/1\.1 \(HPE_INVALID_METHOD\)/, 'as a malformed request');
});

t.test('the same method over h2c reaches the upstream', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(() => session.close());
  const answer = await h2cRequest(session, { ':method': 'BAN', ':path': '/echo' });
  t.equal(answer.status, 200, 'answered');
  t.equal((JSON.parse(answer.body.toString()) as Echo).method, 'BAN', 'the upstream saw BAN');
});
