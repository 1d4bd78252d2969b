// An upstream session whose path dies silently while a long-lived stream (a watch) is open on
// it: the keepalive PINGs whenever the peer was silent for a whole interval, busy or not, and
// destroys the session when the ACK does not come, so new requests get a new session instead
// of waiting out their deadlines on a dead one (busy sessions were never PINGed). A real TCP
// relay between the outbound and a real upstream drops every byte of the frozen connection;
// both codecs.

import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { TD, defaultHandler, makePki, request, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`a session gone silent under an open watch is PINGed and replaced (${codec})`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, {
      handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
        if (headers[':path'] !== '/watch') return defaultHandler(stream, headers, flags);
        stream.on('error', () => {});
        stream.respond({ ':status': 200 });
        stream.write('first event\n'); // and nothing more: open for ever
      },
    });
    const relay = await startFreezingRelay(upstream.port);
    const lines: Array<Record<string, unknown>> = [];
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 60_000 }], { codec, pingIntervalMs: 100, logger: memoryLogger(lines, 'warn') });
    t.teardown(async () => {
      await fx.close();
      await relay.stop();
      await upstream.close();
    });

    t.equal((await request(fx.port)).status, 200, 'warm-up');
    const watch = http.request({ host: '127.0.0.1', port: fx.port, path: '/watch', headers: { host: 'payments' }, agent: false });
    watch.on('error', () => {});
    watch.end();
    const [res] = (await once(watch, 'response')) as [http.IncomingMessage];
    await once(res, 'data'); // the watch is live on the pooled session
    const watchEnded = new Promise<void>((resolve) => {
      res.on('error', () => resolve());
      res.on('close', () => resolve());
    });

    relay.freeze(); // the path of the pooled session goes silent
    // the keepalive finds the dead path within a few intervals; without it the busy session is
    // never PINGed and the watch (like every new request) waits for ever
    const found = await Promise.race([watchEnded.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
    t.ok(found, 'the dead session was destroyed (the watch on it ended)');
    const after = await request(fx.port);
    t.equal(after.status, 200, 'the next request goes over a new session');
    t.equal(relay.connections, 2, 'one new connection');
    // the operator is told which endpoint went dead and what it cut (before: nothing was logged)
    const dead = lines.filter((l) => String(l.msg).includes('did not answer a PING'));
    t.equal(dead.length, 1, 'one warn line for the dead session');
    t.match(dead[0], { level: 40, upstream: 'payments', endpoint: `127.0.0.1:${relay.port}`, inFlight: 1 }, 'it names the upstream, the endpoint and the watch it cut');
    t.match(String(dead[0]?.msg), /sent nothing for 100 ms .*; 1 request in flight on it cut$/, 'and says what happened');
    watch.destroy();
  });
}
