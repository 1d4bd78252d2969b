// One spec named by many upstreams (YAML aliases make that one line each) is read and compiled
// once: a start or reload shares the compiled spec between their guards, and `meshcar check`
// loads the file once. Each was done per upstream: check took 45 s for 1,000 upstreams naming a
// one-operation spec, a reload 33 s (the config review).

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { loadGuards } from '../../src/schema/guards.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const SPEC = `openapi: 3.0.3
info: {title: orders, version: '1'}
paths:
  /orders/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: ok}}
`;

async function configNaming(dir: string, upstreams: number): Promise<string> {
  await writeFile(join(dir, 'orders.yaml'), SPEC);
  const lines = ['service: web', 'trustDomain: mesh.local', 'identity:', `  files: {cert: ${join(dir, 'a.crt')}, key: ${join(dir, 'a.key')}, bundle: ${join(dir, 'b.pem')}}`, 'outbound:', '  listen: 127.0.0.1:0', '  upstreams:'];
  for (let i = 0; i < upstreams; i++) {
    lines.push(`    u${i}:`, `      endpoints: [127.0.0.1:${1000 + i}]`, `      identity: spiffe://mesh.local/svc/u${i}`, i === 0 ? `      openapi: &spec {spec: ${join(dir, 'orders.yaml')}, mode: enforce}` : '      openapi: *spec');
  }
  const file = join(dir, 'web.yaml');
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

t.test("a start's guards share the spec their upstreams name", async (t) => {
  const config = await loadSidecarConfig(await configNaming(t.testdir(), 50));
  const guards = await loadGuards(config);
  t.equal(guards.upstreams.size, 50);
  const specs = new Set([...guards.upstreams.values()].map((guard) => guard.spec));
  t.equal(specs.size, 1, 'one compiled spec for the 50 guards');
  t.not(guards.upstreams.get('u0')?.budget, guards.upstreams.get('u1')?.budget, 'each guard its own body budget');
});

t.test('check loads a spec 300 upstreams name once', async (t) => {
  const file = await configNaming(t.testdir(), 300);
  const started = Date.now();
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => execFile(process.execPath, [CLI, 'check', '--config', file], (err, _out, stderr) => resolve({ code: err ? 1 : 0, stderr })));
  const ms = Date.now() - started;
  t.equal(result.code, 1, 'refused only for the identity files it names, which are not there');
  t.notMatch(result.stderr, /openapi/, 'nothing wrong with the spec');
  t.ok(ms < 8000, `in ${ms} ms (about 45 ms an upstream when each loaded it: ~13.5 s)`);
});
