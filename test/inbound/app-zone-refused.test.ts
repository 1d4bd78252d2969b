// inbound.app with an IPv6 zone id, as a reviewer ran it: `meshcar check` said valid, then an
// h2c app's first request killed the sidecar (uncaught Invalid URL from http2.connect) and an
// http app with http1.appClient: undici made `run` exit 70 at start. Now `check` and `run` both
// refuse the config with one line naming the key, and `run` starts nothing.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** Run in the config's folder, where its relative identity paths are. */
function check(file: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'check', '--config', file], { cwd, timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr }));
  });
}

for (const [app, client] of [['h2c://[::1%lo]:18081', 'meshcar'], ['http://[::1%lo]:18080', 'undici']] as const) {
  t.test(`${app} (appClient ${client}) is refused by check and run`, async (t) => {
    const pki = await makePki('mesh.local');
    const leaf = await pki.issue('spiffe://mesh.local/svc/c');
    const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
    const file = join(dir, 'zone.yaml');
    await writeFile(
      file,
      [
        'service: c',
        'trustDomain: mesh.local',
        'identity: {files: {cert: svid.crt, key: svid.key, bundle: bundle.pem}}',
        `inbound: {listen: "[::1]:0", app: "${app}"}`,
        'admin: {listen: "127.0.0.1:0"}',
        `http1: {appClient: ${client}}`,
        '',
      ].join('\n'),
    );
    const line = `${file}:4:30: inbound.app: "${app}" is not an app URL: an IPv6 address with a zone (::1%lo) cannot be the app's address: give ::1 or the app's address without %`;
    const checked = await check(file, dir);
    t.equal(checked.code, 1, 'check fails');
    t.same(checked.stderr.trim().split('\n'), [line], 'one line naming the key');
    const run = startMeshcar(['run', '--config', file], { cwd: dir });
    // whichever comes first: its exit, or its inbound listening (before the fix: listening, or exit 70)
    const listening = run.waitFor((l) => l.msg === 'inbound listening').then(
      () => 'listening',
      () => new Promise<never>(() => {}),
    );
    const outcome = await Promise.race([run.exited().then((code) => `exit ${code}`), listening]);
    if (outcome === 'listening') t.teardown(() => run.stop());
    t.equal(outcome, 'exit 1', 'run refuses the config: nothing starts');
    t.same(run.stderr, [line]);
  });
}
