// Connections to the admin port that do nothing are closed: one that sends no request at the
// headers timeout (checked every second, not every 30 s), and a client that pipelines requests
// and never reads the answers at ADMIN_IDLE_TIMEOUT_MS (the server no longer holds its socket).
// Raw sockets and a python3 client against a real admin server in this process; every wait is
// bounded.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { ADMIN_IDLE_TIMEOUT_MS, startAdminServer, type AdminState } from '../../src/admin/server.js';
import { CONNECTIONS_CHECKING_INTERVAL_MS } from '../../src/http/idle-connections.js';
import { serverLetGoWithin } from '../helpers/connections.js';
import { startUnreadClient } from '../helpers/unread-client.js';

/** Scheduling on a loaded 2-core machine, on top of each bound. */
const SLACK_MS = 3_000;
/** The admin server's headersTimeout. */
const HEADERS_TIMEOUT_MS = 10_000;

const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  // a page big enough that a few unread answers fill the buffers
  metrics: async () => ({ contentType: 'text/plain', body: `# ${'x'.repeat(64 * 1024)}\n` }),
};

t.test('silent and unread connections to the admin port are let go', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());

  const quiet = net.connect(admin.port, '127.0.0.1');
  quiet.on('error', () => undefined);
  await once(quiet, 'connect');
  const quietPort = quiet.localPort as number;
  quiet.resume();
  const since = Date.now();
  const unread = await startUnreadClient(admin.port, { tls: false, path: '/metrics', count: 200 });
  t.teardown(() => unread.stop());

  const [quietAfter, unreadAfter] = await Promise.all([
    serverLetGoWithin(admin.port, quietPort, since, HEADERS_TIMEOUT_MS + CONNECTIONS_CHECKING_INTERVAL_MS + SLACK_MS),
    serverLetGoWithin(admin.port, unread.localPort, since, ADMIN_IDLE_TIMEOUT_MS + 2 * SLACK_MS),
  ]);
  t.type(quietAfter, 'number', `a connection that sends nothing: closed at the headers timeout (${String(quietAfter)})`);
  t.type(unreadAfter, 'number', `answers never read: let go at the ${ADMIN_IDLE_TIMEOUT_MS} ms idle timeout (${String(unreadAfter)})`);
  t.ok(typeof unreadAfter === 'number' && unreadAfter >= ADMIN_IDLE_TIMEOUT_MS - 1000, 'and only once it has been idle that long');
  quiet.destroy();
});
