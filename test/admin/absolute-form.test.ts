// An absolute-form request target (`GET http://127.0.0.1:P/ready HTTP/1.1`) is served as its
// path, as RFC 9112 §3.2.2 has every server accept it (it was a 404 "no admin endpoint
// http://..."); its authority stands for Host (the server must ignore Host then), so the check
// of rebound names judges the authority; userinfo is refused, as are two Host fields and a
// request line of another version than HTTP/1.x (RFC 9112 §3.2). Raw sockets against a real admin
// server in this process.

import t from 'tap';
import { pino } from 'pino';
import { startAdminServer } from '../../src/admin/server.js';
import { adminExchange, bareAdminState } from '../helpers/admin-state.js';

const state = bareAdminState({ views: { '/endpoints': (query) => ({ format: query.get('format') }) } });

/** One request on its own connection (Connection: close); the whole answer as text. */
const exchange = (port: number, head: string) => adminExchange(port, `${head}Connection: close\r\n\r\n`);

t.test('absolute-form targets are served by their path, judged by their authority', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  const at = `127.0.0.1:${admin.port}`;
  const cases: Array<[string, RegExp, string]> = [
    [`GET http://${at}/ready HTTP/1.1\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 200 [\s\S]*\{"status":"ready"\}$/, 'GET http://127.0.0.1:P/ready: 200 ready'],
    [`GET http://localhost:${admin.port}/endpoints?format=openapi HTTP/1.1\r\nHost: localhost\r\n`, /^HTTP\/1\.1 200 [\s\S]*\{"format":"openapi"\}$/, 'a view gets the query of the target'],
    [`GET HTTP://${at}?x=1 HTTP/1.1\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 404 [\s\S]*no admin endpoint \/;/, 'no path: "/", a 404 naming "/", not the URI'],
    [`GET http://rebound.example/ready HTTP/1.1\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 403 [\s\S]*Host rebound\.example is not one of this admin port's names/, 'a foreign name in the authority is refused, whatever Host says'],
    [`GET http://${at}/ready HTTP/1.1\r\nHost: rebound.example\r\n`, /^HTTP\/1\.1 200 /, 'and Host is ignored when the target names the host (RFC 9112 §3.2.2)'],
    [`GET http://user:pw@${at}/ready HTTP/1.1\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 400 [\s\S]*no userinfo/, 'userinfo: 400'],
    [`GET http:///ready HTTP/1.1\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 400 [\s\S]*must name a host/, 'an empty authority: 400'],
    [`GET /ready HTTP/1.1\r\nHost: rebound.example\r\n`, /^HTTP\/1\.1 403 /, 'origin-form is judged by Host as before'],
    // the guard read the first of two (RFC 9112 §3.2: a 400), and took a version it does not speak
    [`GET /ready HTTP/1.1\r\nHost: ${at}\r\nHost: rebound.example\r\n`, /^HTTP\/1\.1 400 [\s\S]*more than one Host header/, 'two Host fields: 400'],
    [`GET /ready HTTP/2.0\r\nHost: ${at}\r\n`, /^HTTP\/1\.1 400 [\s\S]*HTTP\/2\.0 is not taken/, 'an HTTP/2.0 request line: 400'],
  ];
  for (const [head, expected, what] of cases) {
    const answer = await exchange(admin.port, head);
    t.match(answer, expected, `${what} (${answer.split('\r\n')[0]})`);
  }
});
