// The 431 our codec (server role) answers to a request head over its limits, on a stream it
// never opens: with connection option headersTooLargeAnswer, its fields and body (the
// sidecar's JSON error answer), the body sent only if the peer's windows take it at once and
// counted against the connection's window; else, and without the option, a bare 431.

import t from 'tap';
import { connectOurClient, ourRequest, startOurServer } from './fixtures/h2-helpers.js';

const ANSWER = { fields: ['content-type', 'application/json', 'content-length', '17', 'x-why', 'too-large'], body: Buffer.from('{"error":"large"}') };
const MANY: Record<string, string> = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`h${i}`, 'v']));
const GET = { ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/' };

async function ask(t: Tap.Test, answer: typeof ANSWER | undefined, clientWindow?: number, clientHeaderListSize?: number) {
  const server = await startOurServer((stream) => stream.respond({ ':status': 200 }, { endStream: true }), {
    limits: { maxHeaderFields: 20 },
    ...(answer ? { connectionOptions: { headersTooLargeAnswer: answer } } : {}),
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { limits: { ...(clientWindow === undefined ? {} : { initialWindowSize: clientWindow }), ...(clientHeaderListSize === undefined ? {} : { maxHeaderListSize: clientHeaderListSize }) } });
  t.teardown(() => conn.destroy());
  await ourRequest(conn, GET); // the peer's SETTINGS and window updates are in
  const before = server.connections[0]!.sendWindow.available;
  const res = await ourRequest(conn, { ...GET, ...MANY });
  const ok = await ourRequest(conn, GET);
  // the client returns credit in batches (a quarter window): 17 bytes are not yet given back
  return { res, ok, taken: before - server.connections[0]!.sendWindow.available };
}

t.test('the answer given goes out whole: its fields, its body, counted in the window', async (t) => {
  const { res, ok, taken } = await ask(t, ANSWER);
  t.equal(res.headers[':status'], '431');
  t.equal(res.headers['x-why'], 'too-large');
  t.equal(res.body.toString(), '{"error":"large"}');
  t.equal(taken, ANSWER.body.length, "the body came off the connection's send window");
  t.equal(ok.headers[':status'], '200', 'the connection keeps serving');
});

t.test('a body the stream window cannot take at once: a bare 431', async (t) => {
  const { res, taken } = await ask(t, ANSWER, 8);
  t.equal(res.headers[':status'], '431');
  t.equal(res.headers['x-why'], undefined, 'no fields that describe a body not sent');
  t.equal(res.body.length, 0);
  t.equal(taken, 0, 'nothing came off the window');
});

t.test("fields over the peer's SETTINGS_MAX_HEADER_LIST_SIZE: a bare 431, which fits", async (t) => {
  // :status 431 is 42 bytes as RFC 7541 counts; with the answer's fields, 196: over 100
  const { res, ok, taken } = await ask(t, ANSWER, undefined, 100);
  t.equal(res.headers[':status'], '431', 'the peer takes it');
  t.equal(res.headers['x-why'], undefined, 'without the fields it would refuse');
  t.equal(res.body.length, 0, 'nor the body they describe');
  t.equal(taken, 0);
  t.equal(ok.headers[':status'], '200', 'the connection keeps serving');
});

t.test('no answer given: a bare 431', async (t) => {
  const { res } = await ask(t, undefined);
  t.equal(res.headers[':status'], '431');
  t.equal(res.body.length, 0);
});

t.test('to a HEAD: the 431 head with its fields, no body (DATA would be a content-length mismatch to the peer)', async (t) => {
  const server = await startOurServer((stream) => stream.respond({ ':status': 200 }, { endStream: true }), {
    limits: { maxHeaderFields: 20 },
    connectionOptions: { headersTooLargeAnswer: ANSWER },
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  t.teardown(() => conn.destroy());
  const res = await ourRequest(conn, { ...GET, ':method': 'HEAD', ...MANY });
  t.equal(res.headers[':status'], '431');
  t.equal(res.headers['x-why'], 'too-large', 'the fields of the answer');
  t.equal(res.body.length, 0, 'no body');
  t.equal(res.stream.rstCode, undefined, 'no reset: the answer ended with its head');
  t.equal((await ourRequest(conn, GET)).headers[':status'], '200', 'the connection keeps serving');
});
