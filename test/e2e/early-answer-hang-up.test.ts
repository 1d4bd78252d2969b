// Whole mesh, real processes: curl uploads 8 MiB through `meshcar run` sidecars (frontend's
// outbound → orders' inbound) to an app that answers 413 at the head of the upload and then
// resets its connection with the body unread. The caller gets the app's 413, head and body, and
// both sidecars count a 413 in meshcar_requests_total, no 502 (they used to: the reset failed
// the inbound's write of the body, and the answer was lost with the socket). Both codecs.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import { startRawApp } from '../helpers/raw-http.js';

const execFileAsync = promisify(execFile);
const mesh = meshFixture(t);

/** Requests counted per direction and status code (every route and peer summed). */
function countsOf(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, direction, code, value] of metrics.matchAll(/^meshcar_requests_total\{direction="(\w+)",.*code="(\d+)"\} (\d+)$/gm)) {
    const key = `${direction} ${code}`;
    counts[key] = (counts[key] ?? 0) + Number(value);
  }
  return counts;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an app's 413 before it resets the upload's connection reaches curl, counted as 413`, async (t) => {
    const app = await startRawApp((_request, socket) => socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\nX-App: early\r\n\r\ntoo big', () => socket.resetAndDestroy()));
    t.teardown(() => app.close());
    const orders = await startSidecar(mesh.ca, { service: 'orders', codec, inbound: { app: `http://127.0.0.1:${app.port}` } });
    t.teardown(() => orders.stop('SIGKILL'));
    const frontend = await startSidecar(mesh.ca, { service: 'frontend', codec, upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }] });
    t.teardown(() => frontend.stop('SIGKILL'));
    const upload = join(t.testdir(), 'upload.bin');
    await writeFile(upload, Buffer.alloc(8 * 1024 * 1024, 97));

    // curl sends Expect: 100-continue for a body this size (the inbound's app client for such
    // requests is node:http); `Expect:` empty sends none (the inbound's own pooled client)
    for (const [i, expect] of [[1, []], [2, ['-H', 'Expect:']]] as const) {
      const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '60', '-D', '-', '-H', 'Host: orders', ...expect, '--data-binary', `@${upload}`, `http://127.0.0.1:${frontend.outboundPort}/upload`]);
      const how = expect.length === 0 ? 'with Expect' : 'without Expect';
      t.match(stdout, /^HTTP\/1\.1 413 /m, `upload ${i} (${how}): the app's status`);
      t.match(stdout, /^x-app: early\r?$/im, `upload ${i} (${how}): the app's header`);
      t.ok(stdout.endsWith('\r\n\r\ntoo big'), `upload ${i} (${how}): the app's body`);
    }
    let counts: Record<string, Record<string, number>> = {};
    await waitFor(
      async () => {
        counts = { frontend: countsOf((await frontend.admin('/metrics')).body), orders: countsOf((await orders.admin('/metrics')).body) };
        return counts.frontend?.['outbound 413'] === 2 && counts.orders?.['inbound 413'] === 2;
      },
      10_000,
      'both sidecars to count the two 413s',
    ).catch(() => undefined);
    t.same(counts, { frontend: { 'outbound 413': 2 }, orders: { 'inbound 413': 2 } }, 'counted as the app\'s 413 on both sidecars, no 502');
  });
}
