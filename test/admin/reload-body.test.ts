// POST /reload's body is not read, but it ends before the reload runs (src/admin/body-end.ts):
// a body that breaks (a bad chunk) ran the reload while the connection was closed under the
// unanswered request, the client told nothing. Now nothing is reloaded and the client gets the
// parser's JSON 400; a whole body, chunked or not, still reloads. Raw sockets against a real
// admin server in this process.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
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

// a client that half-closes once its whole request is sent (`nc -q`, a script shutting its
// writing side): Node ended the connection at the FIN, so the reload ran and nobody was told
t.test('a whole POST /reload from a client that half-closes after it: reloaded, and answered', async (t) => {
  let ran = 0;
  // as a real reload does, it takes a while (reading the file and its specs): the FIN comes first
  const slow = bareAdminState({ reload: async () => (await new Promise((resolve) => setTimeout(resolve, 300)), { applied: [++ran] }) });
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, slow, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  for (const head of ['POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n', 'POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}']) {
    const answer = await exchange(admin.port, head, true);
    t.match(answer, new RegExp(`^HTTP/1\\.1 200 [\\s\\S]*\\{"applied":\\[${ran}\\]\\}$`), `reload ${ran} answered: ${JSON.stringify(answer.slice(0, 40))}`);
  }
  t.equal(ran, 2, 'each ran once');
});

// pipelined: whole POST /reloads, then one whose body breaks, in one write. The 400 went out
// through the first request's response (the one Node was writing), so the first reload ran and
// its client was told 400, and the reload's own answer then threw ERR_HTTP_HEADERS_SENT,
// logged as an internal error with a stack, once per connection; closing after that first
// answer instead lost the answer of a reload queued between. Now each is answered in its turn,
// the broken one with its 400 (running nothing), and the connection closes after it.
for (const whole of [1, 2]) {
  t.test(`a broken body pipelined behind ${whole} reload${whole === 1 ? '' : 's'}: each answered as itself, in turn`, async (t) => {
    let ran = 0;
    let release: () => void = () => undefined;
    const held = bareAdminState({ reload: async () => {
      const n = ++ran;
      if (n === 1) await new Promise<void>((resolve) => (release = resolve));
      return { applied: [n] };
    } });
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, held, logger);
    t.teardown(() => admin.close());
    const reload = 'POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n';
    const answer = exchange(admin.port, `${reload.repeat(whole)}POST /reload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n`);
    // the first reload held until the broken body behind it has been read (a real one takes a while)
    const until = Date.now() + 5_000;
    while ((ran === 0 || !lines.some((l) => /body broke/.test(l.msg))) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    release();
    const text = await answer;
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    t.same(statuses, [...Array(whole).fill(200), 400], `each answered in turn: ${statuses.join(', ')}`);
    t.same([...text.matchAll(/"applied":\[(\d+)\]/g)].map((m) => Number(m[1])), Array.from({ length: whole }, (_, i) => i + 1), 'each reload with its own answer');
    t.equal(ran, whole, 'the broken one ran nothing');
    t.same(lines.filter((l) => l.level >= 50), [], 'no internal error logged');
  });
}

// Node's errored parser reports the error again at each later read: one answer, no more
t.test('more bytes after a broken body: dealt with once', async (t) => {
  let release: () => void = () => undefined;
  const held = bareAdminState({ reload: async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return { applied: [1] };
  } });
  const lines: Array<{ msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, held, logger);
  t.teardown(() => admin.close());
  const socket = net.connect(admin.port, '127.0.0.1');
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  const closed = once(socket, 'close');
  socket.write('POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\nPOST /reload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n');
  const broke = () => lines.filter((l) => /body broke/.test(l.msg)).length;
  const until = Date.now() + 5_000;
  while (broke() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 20; i++) socket.write('more\r\n');
  await new Promise<void>((resolve) => socket.write('x', () => resolve()));
  release();
  await closed;
  t.equal(broke(), 1, 'one answer for the broken body, however many reads follow');
  t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1])), [200, 400], 'the reload, then the 400');
});

// a broken body on a request whose handler answers or fails by itself (a view, a 404, a 405,
// a refusal of the browser guard), alone or behind a slow answer: the parser's 400 went out
// through its response, then the handler's own answer threw (an internal error logged with a
// stack, once per connection) or found the head sent and destroyed the response, which, queued,
// took the connection before the 400 went out (the caller got nothing). The handler now leaves
// a response the parser answered alone.
t.test('a broken body on any request: its 400, in turn, and no internal error', async (t) => {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  let release: (() => void) | undefined;
  const slow = bareAdminState({
    metrics: async () => {
      await new Promise<void>((resolve) => (release = resolve));
      release = undefined;
      return { contentType: 'text/plain', body: 'm 1\n' };
    },
    views: { '/endpoints': () => ({ v: 1 }) },
  });
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, slow, logger, { metricsMinGapMs: 0 });
  t.teardown(() => admin.close());
  const H = 'Host: localhost\r\n';
  const BROKEN = 'Transfer-Encoding: chunked\r\n\r\nzz\r\n';
  for (const [what, request] of [
    ['a view', `GET /endpoints HTTP/1.1\r\n${H}${BROKEN}`],
    ['no such endpoint', `GET /nope HTTP/1.1\r\n${H}${BROKEN}`],
    ['a method the endpoint does not take', `POST /healthz HTTP/1.1\r\n${H}${BROKEN}`],
    ['a Host the guard refuses', `GET /config HTTP/1.1\r\nHost: evil.example\r\n${BROKEN}`],
  ] as const) {
    const alone = await exchange(admin.port, request);
    t.match(alone, /^HTTP\/1\.1 400 /, `${what}, alone: its 400`);
    // behind a /metrics whose page is held: the one write is parsed whole, the broken body
    // included, before the page is asked for, so the page is released once it is
    const answer = exchange(admin.port, `GET /metrics HTTP/1.1\r\n${H}\r\n${request}`);
    while (release === undefined) await new Promise((r) => setTimeout(r, 5));
    release();
    const behind = await answer;
    t.same([...behind.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1])), [200, 400], `${what}, behind a slow answer: 200, then its 400`);
  }
  t.same(lines.filter((l) => l.level >= 50).map((l) => l.msg), [], 'no internal error logged');
});
