// POST /reload's body is not read, but it ends before the reload runs (src/admin/body-end.ts):
// a body that breaks (a bad chunk) ran the reload while the connection was closed under the
// unanswered request, the client told nothing. Now nothing is reloaded and the client gets the
// parser's JSON 400; a whole body, chunked or not, still reloads. Raw sockets against a real
// admin server in this process.

import t from 'tap';
import { pino } from 'pino';
import { startAdminServer } from '../../src/admin/server.js';
import { adminExchange as exchange, bareAdminState } from '../helpers/admin-state.js';

let reloads = 0;
const state = bareAdminState({ reload: async () => ({ applied: [++reloads] }) });

t.test('a broken body runs no reload and is told so; a whole one reloads', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  const head = 'POST /reload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n';

  const badChunk = await exchange(admin.port, `${head}Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n`);
  t.match(badChunk, /^HTTP\/1\.1 400 [\s\S]*"error":"bad_request"[\s\S]*not valid HTTP\/1\.1/, `a bad chunk size: the JSON 400 (${JSON.stringify(badChunk.slice(0, 60))})`);
  t.match(badChunk, /connection: close/i, 'and the connection closes');
  t.equal(reloads, 0, 'nothing was reloaded');

  const chunked = await exchange(admin.port, `${head}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`);
  t.match(chunked, /^HTTP\/1\.1 200 [\s\S]*\{"applied":\[1\]\}$/, 'a whole chunked body: reloaded');
  const sized = await exchange(admin.port, `${head}Content-Length: 2\r\n\r\n{}`);
  t.match(sized, /^HTTP\/1\.1 200 [\s\S]*\{"applied":\[2\]\}$/, 'a whole sized body: reloaded');
  const none = await exchange(admin.port, `${head}\r\n`);
  t.match(none, /^HTTP\/1\.1 200 [\s\S]*\{"applied":\[3\]\}$/, 'no body: reloaded');

  // a body cut off by the client: its connection half-closed before the length it announced
  const cut = await exchange(admin.port, `${head}Content-Length: 100\r\n\r\n{}`, true);
  t.match(cut, /^HTTP\/1\.1 400 [\s\S]*"error":"bad_request"/, 'a body cut short: the JSON 400');
  t.equal(reloads, 3, 'and nothing reloaded');
  t.equal((await exchange(admin.port, `${head}\r\n`)).match(/"applied":\[(\d+)\]/)?.[1], '4', 'the next reload is the fourth');
});
