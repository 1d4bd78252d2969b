// `make rotate-demo` end to end, in a fresh folder: the demo mesh comes up, the CA root rotates in
// its three steps while traffic runs, each step prints the roots each sidecar trusts (two after
// add, the new one active after activate, only the new one after retire), no request fails, and
// every process it started is stopped.

import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNNER = fileURLToPath(new URL('../../dist/demo/rotate-demo.js', import.meta.url));

t.test('the rotate demo rotates the root under traffic with zero failed requests', async (t) => {
  const cwd = t.testdir();
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [RUNNER], { cwd, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  t.equal(result.code, 0, result.stderr || result.stdout);
  const out = result.stdout;
  const section = (from: string, to: string) => out.slice(out.indexOf(from), to ? out.indexOf(to) : undefined);
  const add = section('$ meshcar ca root add', '$ meshcar ca root activate');
  const activate = section('$ meshcar ca root activate', '$ meshcar ca root retire');
  const retire = section('$ meshcar ca root retire', 'root rotation done');
  for (const sidecar of ['orders', 'frontend']) {
    t.match(add, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(active\\), [0-9a-f]{8} \\(pending\\) \\[meshcar_identity_bundle_roots 2\\]`), `after add, ${sidecar} trusts both roots`);
    t.match(activate, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(retiring\\), [0-9a-f]{8} \\(active\\) \\[meshcar_identity_bundle_roots 2\\]`), `after activate, ${sidecar} still trusts both`);
    t.match(retire, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(active\\) \\[meshcar_identity_bundle_roots 1\\]`), `after retire, ${sidecar} trusts only the new root`);
  }
  t.equal((out.match(/failed requests so far: 0 of \d+/g) ?? []).length, 4, 'zero failures before and after every step');
  t.match(out, /root rotation done: \d+ requests through the mesh, 0 failed/);
  t.match(out, /stopped every process the demo started/);
  // the sidecars are stopped before the CA: none is left to find its CA gone
  t.notMatch(out.slice(out.indexOf('root rotation done')), /could not fetch the CA's trust bundle|\[(orders|frontend)-sidecar\]/, 'no sidecar warning after done');
});
