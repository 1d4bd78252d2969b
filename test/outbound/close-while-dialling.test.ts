// Closing an outbound while requests wait on a dial (both codecs) is not a failure of the
// endpoint being dialled: what fails because the pool closed (the dial cut short, the agent
// destroyed, the meshcar pool shutting down) used to reach a requester's failover, which
// penalised the endpoint and logged "upstream endpoint failed" at shutdown. A WebSocket
// upgrade's dial (withFailover with no wait to cancel: it runs on to its timeout) showed it.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startModeGate, waitFor } from '../helpers/mode-gate.js';

const upgrade = 'GET /ws HTTP/1.1\r\nHost: payments\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: close() with requests waiting on a dial logs no endpoint failure`, async (t) => {
    const pki = await makePki(TD);
    const up = await startUpstream(pki);
    // the endpoint answers no connection (TCP accepted, TLS never): every dial waits for its timeout
    const gate = await startModeGate(up.port, 'hold');
    const lines: Array<Record<string, unknown>> = [];
    const fx = await startBalanced(pki, { ports: [gate.port], timeoutMs: 1000, codec, logger: memoryLogger(lines, 'warn'), tuning: { pingIntervalMs: 60_000 } });
    t.teardown(async () => {
      await fx.close();
      await gate.close();
      await up.close();
    });
    const ended = Array.from({ length: 3 }, () =>
      request(fx.port, { path: '/echo' }).then(
        (res) => `${res.status}`,
        (err: Error) => err.message,
      ),
    );
    const app = net.connect(fx.port, '127.0.0.1');
    app.on('error', () => {});
    await once(app, 'connect');
    app.write(upgrade);
    // one dial for the requests' session, one for the upgrade's connection
    await waitFor('both dials reached the endpoint', () => gate.held === 2);
    await fx.close();
    await Promise.all(ended);
    // each dial ends at its connect timeout: the held connections close
    await waitFor('the dials gave up', () => gate.held === 0, 5000);
    app.destroy();
    const failed = lines.filter((l) => l.msg === 'upstream endpoint failed');
    t.same(failed, [], 'no "upstream endpoint failed" at shutdown');
  });
}
