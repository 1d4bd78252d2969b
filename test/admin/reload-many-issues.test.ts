// A reload of a file with thousands of mistakes is refused with the first ones told and a count
// of the rest (src/reload-outcome.ts): each issue was a log line and a line of the JSON answer,
// so 20,000 of them answered megabytes and flooded the log. The running config is kept.
// A real sidecar from our CA; POST /reload on its admin port.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpGet, httpPost, startSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);

t.test('20,000 mistakes: 100 told, the rest counted, the old config kept', async (t) => {
  const sidecar = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const good = await readFile(sidecar.configFile, 'utf8');
  const before = (await httpGet(sidecar.adminPort, '/config')).body;
  // 20,000 unknown top-level keys: one issue each
  await writeFile(sidecar.configFile, good + Array.from({ length: 20_000 }, (_, i) => `extra${i}: 1\n`).join(''));
  const mark = sidecar.process.lines.length;
  const res = await httpPost(sidecar.adminPort, '/reload');
  t.equal(res.status, 400, 'refused');
  t.ok(res.body.length < 64 * 1024, `a short answer (${res.body.length} bytes)`);
  const body = JSON.parse(res.body) as { error: string; message: string };
  t.equal(body.error, 'config_invalid');
  const lines = body.message.split('\n');
  t.equal(lines.length, 101, '100 issues and a count');
  t.match(lines[0], /:\d+:\d+: extra0: /, 'the first issue, with file:line:column');
  t.match(lines[100], /and 19,900 more issues/, 'the rest counted');
  const logged = sidecar.process.lines.slice(mark).filter((l) => l.level === 50);
  t.ok(logged.length <= 102, `the log: ${logged.length} error lines`);
  t.equal((await httpGet(sidecar.adminPort, '/config')).body, before, 'the running config is kept');
  t.equal((await httpGet(sidecar.adminPort, '/ready')).status, 200, 'still ready');
});
