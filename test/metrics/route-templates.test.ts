// Route labels are printable ASCII whatever bytes a caller's path holds: HTTP/2 carries a
// :path's bytes 0x80-0xFF as they are (a C1 control, 0x9B CSI, among them), and a learned
// route is made from the path. A real inbound (meshcar codec) takes such a request; the
// rendered /metrics text and the discovery rows hold the route with the byte as %9B.

import t from 'tap';
import { Metrics } from '../../src/metrics/registry.js';
import { TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { learnedTemplate } from '../../src/metrics/route-templates.js';
import type { RequestRecord } from '../../src/metrics/traffic.js';
import { FRONTEND_ID, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

t.test('learnedTemplate: a byte outside printable ASCII is %XX, as the canonical form writes it', async (t) => {
  t.equal(learnedTemplate('/files/a\u009b[2J\u00e9'), '/files/a%9B[2J%E9');
  t.equal(learnedTemplate('/files/a%9B[2J'), '/files/a%9B[2J', 'the same route as the escaped spelling');
  t.equal(learnedTemplate('/orders/mine'), '/orders/mine');
});

t.test('a raw 0x9B in an HTTP/2 :path: the route label holds %9B', async (t) => {
  const fx = await startInbound({ codec: 'meshcar' });
  t.teardown(() => fx.close());
  const metrics = new Metrics({ processMetrics: false });
  const traffic = new TrafficMetrics(metrics);
  let seen: RequestRecord | undefined;
  Object.assign(fx.observer, {
    requestFinished: (record: RequestRecord) => {
      seen = record;
      traffic.requestFinished(record);
    },
  });
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  // Node's client sends a string header as latin1: the byte 0x9B on the wire
  const res = await h2Request(session, { ':method': 'GET', ':path': '/files/a\u009b[2J' });
  t.ok(res.status > 0, `answered ${res.status}`);
  const deadline = Date.now() + 5_000;
  while (seen === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(seen?.path, '/files/a\u009b[2J', 'the path arrived with the raw byte');
  const text = await metrics.render();
  t.notOk(/[^\x09\x0a\x20-\x7e]/.test(text), '/metrics is printable ASCII');
  t.match(text, /route="\/files\/a%9B\[2J"/);
  t.same(traffic.discoveryRows().map((r) => r.route), ['/files/a%9B[2J']);
});
