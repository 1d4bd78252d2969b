// The app's response head as the caller receives it, from an app written as raw TCP so every
// byte of the head is ours: repeated fields combined as node:http combines them (Set-Cookie
// kept apart, single-valued fields not forged into a list), a field named __proto__ swapping
// no prototype, hop-by-hop fields and the ones Connection names dropped,
// an interim 103 not relayed, and a malformed head answered 502 bad_gateway.

import t from 'tap';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { startRawApp } from '../helpers/raw-http.js';

/** How many times `name` came in a raw head (name case as sent). */
function fieldCount(raw: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) n++;
  return n;
}

const HEADS: Record<string, string> = {
  '/repeated':
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Multi: one\r\nX-Multi: two\r\n' +
    '__proto__: polluted\r\nConnection: keep-alive, X-Private\r\nX-Private: hop\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok',
  '/early-hints': 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
  '/malformed': 'HTTP/1.1 200 OK\r\nBad Header Name: x\r\nContent-Length: 2\r\n\r\nok',
  // Connection may name anything, even our :status slot: it names no field the app sent
  '/connection-status': 'HTTP/1.1 202 Accepted\r\nX-First: kept\r\nConnection: :status, x-gone\r\nX-Gone: 1\r\nContent-Length: 2\r\n\r\nok',
};

t.test("the app's response head, field by field", async (t) => {
  const app = await startRawApp(({ line }, socket) => {
    socket.write(HEADS[line.split(' ')[1] as string] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();

  t.test('HTTP/1.1 caller', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, { path: '/repeated' });
    t.equal(res.status, 200);
    t.equal(res.body, 'ok');
    t.same(res.headers['set-cookie'], ['a=1', 'b=2'], 'each Set-Cookie kept apart');
    t.equal(res.headers['x-multi'], 'one, two', 'other repeats joined');
    t.equal(res.headers['content-type'], 'text/plain', 'a single-valued field keeps its first value');
    t.equal(fieldCount(res.rawHeaders, 'content-type'), 1, 'and is sent once (clients would hide a second one)');
    t.notOk('x-private' in res.headers, 'a field Connection names is dropped');
    t.notOk('keep-alive' in res.headers, 'hop-by-hop fields are dropped');
  });

  t.test('HTTP/2 caller', async (t) => {
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const res = await h2Request(session, { ':method': 'GET', ':path': '/repeated' });
    t.equal(res.status, 200);
    t.same(res.headers['set-cookie'], ['a=1', 'b=2']);
    t.equal(res.headers['x-multi'], 'one, two');
    t.equal(res.headers['content-type'], 'text/plain', 'a field named __proto__ changed nothing else');
    t.equal(fieldCount(res.rawHeaders, 'content-type'), 1, 'a single-valued field is sent once');
    t.equal(res.headers['__proto__'], 'polluted', 'and it is forwarded as a field like any other');
    t.notOk('x-private' in res.headers, 'a field Connection names is dropped');
    t.notOk('keep-alive' in res.headers, 'hop-by-hop fields are dropped');
  });

  t.test('a Connection header naming :status changes neither the status nor the other fields', async (t) => {
    const h1 = await h1Request(fx.port, tlsOptions, { path: '/connection-status' });
    t.equal(h1.status, 202, 'HTTP/1.1: the status');
    t.equal(h1.headers['x-first'], 'kept', 'HTTP/1.1: the first field');
    t.notOk('x-gone' in h1.headers, 'HTTP/1.1: what Connection names is dropped');
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.close());
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/connection-status' });
    t.equal(h2.status, 202, 'HTTP/2: the status');
    t.equal(h2.headers['x-first'], 'kept', 'HTTP/2: the first field');
    t.notOk('x-gone' in h2.headers, 'HTTP/2: what Connection names is dropped');
  });

  t.test('an interim 103 is not relayed; the final answer is', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, { path: '/early-hints' });
    t.equal(res.status, 200);
    t.equal(res.body, 'final');
  });

  t.test('a malformed head is 502 bad_gateway', async (t) => {
    const res = await h1Request(fx.port, tlsOptions, { path: '/malformed' });
    t.equal(res.status, 502);
    t.equal(JSON.parse(res.body).error, 'bad_gateway');
    await waitFor(async () => fx.inbound.inFlight === 0, 2000, 'the exchange to end');
    t.equal(fx.inbound.inFlight, 0, 'and the exchange is over');
  });
});
