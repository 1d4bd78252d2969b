// An app's upload that stops midway, through a whole pair with equal idle timeouts on both
// sides (as the defaults are): the inbound's idle timer fires first, exactly at the limit, and
// its answer decides. It said 504 upstream_timeout ("no bytes moved either way") although its
// app had every byte sent and waited for the rest; the outbound relayed the 504 and scored it
// against the endpoint, so an app abandoning uploads got a healthy endpoint ejected. The
// inbound now answers 408 request_timeout, as the outbound answers its own app's stall. An app
// that stops reading a large upload is still the app stalling: 504. Both codecs.

import t from 'tap';
import http from 'node:http';
import { startMeshCa, startSidecar } from '../helpers/mesh.js';
import { listening, rawTcpRequest } from '../helpers/raw-http.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an app's stalled upload is 408 and no endpoint is ejected; an app not reading is 504`, async (t) => {
    const app = http.createServer((req, res) => {
      // /hold reads nothing: a large upload fills every buffer toward it
      if (req.url === '/hold') return;
      req.resume();
      req.on('end', () => res.end('done'));
    });
    const appPort = await listening(t, app);
    const ca = await startMeshCa(t.testdir());
    t.teardown(() => ca.stop());
    const back = await startSidecar(ca, { service: 'api', codec, inbound: { app: `http://127.0.0.1:${appPort}`, timeout: '10s\n  idleTimeout: 1s' } });
    t.teardown(() => back.stop('SIGKILL'));
    const front = await startSidecar(ca, {
      service: 'web',
      codec,
      upstreams: [{ name: 'api', endpoints: [`127.0.0.1:${back.inboundPort}`], identity: 'spiffe://mesh.local/svc/api', timeout: '10s\n      idleTimeout: 1s', outlierDetection: '{consecutiveFailures: 2, maxEjectionPercent: 100}' }],
    });
    t.teardown(() => front.stop('SIGKILL'));

    for (let i = 1; i <= 3; i++) {
      // a Content-Length of 100 and 5 bytes of it: the app never sends the rest
      const answer = await rawTcpRequest(front.outboundPort, 'POST /upload HTTP/1.1\r\nHost: api\r\nContent-Length: 100\r\n\r\nhello');
      t.equal(answer.status, 408, `stalled upload ${i}: 408 (${answer.body})`);
      t.match(answer.body, /"error":"request_timeout"/, 'request_timeout');
    }
    const metrics = (await front.admin('/metrics')).body;
    t.notMatch(metrics, /^meshcar_outlier_ejections_total\{upstream="api"\} [1-9]/m, 'the endpoint was not ejected');
    const next = await rawTcpRequest(front.outboundPort, 'GET /ok HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    t.equal(next.status, 200, 'the next request is served');

    // the app stops reading: the caller keeps sending until every buffer on the way is full
    const held = await rawTcpRequest(front.outboundPort, `POST /hold HTTP/1.1\r\nHost: api\r\nContent-Length: ${8 << 20}\r\n\r\n${'x'.repeat(8 << 20)}`);
    t.equal(held.status, 504, `an app that does not read: 504 (${held.body})`);
    t.match(held.body, /"error":"upstream_timeout"/, 'upstream_timeout');
  });
}
