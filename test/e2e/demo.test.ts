// `make demo` in miniature: the demo runner, bounded by DEMO_SECONDS, in a fresh folder. It
// must bring the mesh up, print its summary (statuses, latencies, the policy 403, the refused
// certificate-less connection, the calls the OpenAPI check refused, the per-route table, the
// discovered API) and stop every process it started.

import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNNER = fileURLToPath(new URL('../../dist/demo/run-demo.js', import.meta.url));

t.test('the demo runs, prints its summary and stops by itself', async (t) => {
  const cwd = t.testdir();
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [RUNNER], { cwd, env: { ...process.env, DEMO_SECONDS: '1' }, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /GET frontend \/checkout\/\{id\}\s+\d+\s+200×\d+/, 'frontend calls through the mesh succeeded');
  t.match(result.stdout, /policy: DELETE \/orders\/7 from frontend → 403 forbidden/);
  t.match(result.stdout, /TLS without a client certificate to the orders sidecar → refused/);
  t.match(result.stdout, /per route, from the sidecars' own \/metrics/);
  // OpenAPI (config/orders.openapi.yaml, enforce on the orders sidecar)
  t.match(result.stdout, /GET \/orders\/abc\s+→ 400 schema_violation: path\/id: must be integer/, 'an invalid call refused, with location and rule');
  t.match(result.stdout, /GET \/orders\/7\/invoice\s+→ 404 undocumented_operation/);
  t.match(result.stdout, /POST \/orders\s+→ 400 schema_violation: body\/qty: must be >= 1/);
  t.match(result.stdout, /POST \/orders\s+→ 415 unsupported_media_type/);
  t.match(result.stdout, /POST orders \/orders\s+\d+\s+201×\d+\s/, 'the valid calls pass');
  t.match(result.stdout, /the orders API as discovered/);
  t.match(result.stdout, /GET\s+\/orders\/\{id\}\/invoice\s+1\s+NO\s+404\s+frontend/, 'the discovered API shows the undocumented call');
  t.match(result.stdout, /orders sidecar\s+inbound\s+frontend\s+GET\s+\/orders\/\{id\}/, 'per-route table has the inbound route');
  t.match(result.stdout, /metrics: http:\/\/127\.0\.0\.1:15100\/metrics/);
  t.match(result.stdout, /stopped every process the demo started/);
  const urls = result.stdout.indexOf('frontend sidecar admin: http://127.0.0.1:15100/metrics');
  t.ok(urls >= 0 && urls < result.stdout.indexOf('driving traffic'), 'the admin URLs are printed before traffic starts, to explore while it runs');
  t.match(result.stdout, /curl -H 'Host: orders' http:\/\/127\.0\.0\.1:15001\/orders\/42/);
  t.match(result.stdout, /npx meshcar doctor --config \S*config\/demo\/frontend\.yaml/, 'and how to run meshcar doctor on it');
  t.match(result.stdout, /each frontend checkout\s+also calls GET \/orders\/\{id\}/, 'why orders counts more GET /orders/{id} than the client');
});
