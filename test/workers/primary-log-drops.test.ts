// The log lines the PRIMARY drops are counted in /metrics (workers: 2), for real: a sidecar with
// two workers whose stdout the test stops reading, and a config file with 150 long unknown keys,
// so every POST /reload makes the primary log about 40 KB of error lines (the 100 issues a
// refusal tells, and their count; the workers log nothing: the primary refuses the file before
// they hear of it). Once the pipe and the 4 MiB buffer are full the primary drops lines;
// meshcar_log_lines_dropped_total must say so. It said 0: with workers > 1 the family was
// summed over the workers' answers only.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpPost, launchSidecar, metricValue } from '../helpers/mesh.js';
import { workersFixture } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('log lines the primary drops count in meshcar_log_lines_dropped_total', { timeout: 30_000 }, async (t) => {
  const sidecar = await (await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' })).ready();
  const stdout = sidecar.process.child.stdout!;
  t.teardown(async () => {
    stdout.resume();
    await sidecar.stop('SIGKILL');
  });
  const good = await readFile(sidecar.configFile, 'utf8');
  t.equal(metricValue((await sidecar.admin('/metrics')).body, 'meshcar_log_lines_dropped_total'), 0, 'nothing dropped before');
  await writeFile(sidecar.configFile, `${good}${Array.from({ length: 150 }, (_, i) => `${'k'.repeat(180)}${i}: 1`).join('\n')}\n`);
  stdout.pause();
  // each refused reload is ~40 KB of error lines: a hundred or so fill the pipe and the 4 MiB buffer
  let dropped = 0;
  let refused = 0;
  let made = 0;
  const started = Date.now();
  for (let batch = 1; batch <= 20 && dropped === 0 && Date.now() - started < 20_000; batch++) {
    for (let i = 0; i < 25; i++, made++) if ((await httpPost(sidecar.adminPort, '/reload')).status === 400) refused++;
    dropped = metricValue((await sidecar.admin('/metrics')).body, 'meshcar_log_lines_dropped_total') ?? 0;
  }
  t.equal(refused, made, `every reload refused (400): ${refused}`);
  stdout.resume();
  await writeFile(sidecar.configFile, good);
  t.ok(dropped > 0, `/metrics counts the lines the primary dropped (${dropped})`);
});
