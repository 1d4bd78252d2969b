// Connections to the admin port that do nothing are closed at the idle timeout (ADMIN_IDLE_TIMEOUT_MS
// by default, a short one here): one that sends no request, and a client that pipelines requests
// (as many as the server answers on one connection: more close it at once, pipelining.test.ts)
// and never reads the answers (the server no longer holds its socket). The sweep runs only while
// a connection is open: an idle sidecar's admin port sets no timer.
// Raw sockets and a python3 client against a real admin server in this process; every wait is
// bounded.

// test-run: own process (it counts this process's timers)
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';
import { ADMIN_MAX_PIPELINED } from '../../src/admin/pipeline-bound.js';
import { serverLetGoWithin } from '../helpers/connections.js';
import { startUnreadClient } from '../helpers/unread-client.js';
import { adminExchange, bareAdminState } from '../helpers/admin-state.js';

/** Scheduling on a loaded 2-core machine, on top of each bound. */
const SLACK_MS = 3_000;
/** The idle timeout the server runs with here. */
const IDLE_MS = 1_500;

const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  // a page big enough that a few unread answers fill the buffers
  metrics: async () => ({ contentType: 'text/plain', body: `# ${'x'.repeat(256 * 1024)}\n` }),
};

t.test('silent and unread connections to the admin port are let go', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { idleTimeoutMs: IDLE_MS });
  t.teardown(() => admin.close());

  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const idleTimers = timers();
  const quiet = net.connect(admin.port, '127.0.0.1');
  quiet.on('error', () => undefined);
  await once(quiet, 'connect');
  const quietPort = quiet.localPort as number;
  quiet.resume();
  const since = Date.now();
  const unread = await startUnreadClient(admin.port, { tls: false, path: '/metrics', count: ADMIN_MAX_PIPELINED });
  t.teardown(() => unread.stop());
  t.ok(timers() > idleTimers, 'the sweep runs while connections are open');

  const [quietAfter, unreadAfter] = await Promise.all([
    serverLetGoWithin(admin.port, quietPort, since, IDLE_MS + SLACK_MS),
    serverLetGoWithin(admin.port, unread.localPort, since, IDLE_MS + 2 * SLACK_MS),
  ]);
  t.type(quietAfter, 'number', `a connection that sends nothing: closed at the idle timeout (${String(quietAfter)})`);
  t.type(unreadAfter, 'number', `answers never read: let go at the ${IDLE_MS} ms idle timeout (${String(unreadAfter)})`);
  t.ok(typeof unreadAfter === 'number' && unreadAfter >= IDLE_MS - 500, 'and only once it has been idle that long');
  quiet.destroy();
  for (let i = 0; i < 100 && timers() > idleTimers; i++) await new Promise((resolve) => setImmediate(resolve));
  t.equal(timers(), idleTimers, 'with no connection open, the sweep timer is gone: an idle admin port wakes for nothing');
});

t.test('a slow handler with a quick request pipelined behind it keeps its connection past the idle timeout', async (t) => {
  // the sweep looked at the latest request's response only: the GET /healthz answered (queued
  // behind the reload's) read as no handler at work, and the connection was cut mid-reload, the
  // reload's answer lost though it ran (a review)
  let reloads = 0;
  const heldMs = IDLE_MS * 2;
  const slowState = bareAdminState({
    reload: async () => {
      // held past the idle timeout (plus a sweep): what is under test is time passing
      await new Promise((resolve) => setTimeout(resolve, heldMs + 1_000));
      reloads++;
      return { applied: ['inbound.authorize'] };
    },
  });
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, slowState, pino({ level: 'silent' }), { idleTimeoutMs: IDLE_MS });
  t.teardown(() => admin.close());
  const host = 'Host: localhost\r\n';
  const since = Date.now();
  const text = await adminExchange(admin.port, `POST /reload HTTP/1.1\r\n${host}\r\nGET /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
  const answers = text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
  t.same(answers, ['HTTP/1.1 200', 'HTTP/1.1 200'], `both answers, the reload's first (connection closed after ${Date.now() - since} ms)`);
  t.match(text, /"applied":\["inbound\.authorize"\]/, "the reload's own answer came");
  t.equal(reloads, 1, 'the reload ran once');
});
