// `meshcar doctor` reads the files a config names as the sidecar does, bounded: a FIFO with no
// writer as identity.files.cert or identity.ca.token held doctor for ever (a blocking open), and
// a device such as /dev/zero would have been read until memory ran out. Each is a ✗ naming the
// file, within the probes' timeout; exit 1. No CA is needed: the files are what is checked.

import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** doctor to its end, killed after 15 s (it hung for ever on a FIFO). */
function doctor(file: string): Promise<{ code: number | string; stdout: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file], { timeout: 15_000, killSignal: 'SIGKILL' }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number | null }).code ?? (err as { signal?: string }).signal ?? -1) : 0, stdout, ms: Date.now() - started }),
    ),
  );
}

t.test('a FIFO or a device in place of an identity file or the join token: a ✗ naming it, in seconds', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const files = (cert: string, bundle: string) => `identity:\n  files: {cert: ${cert}, key: ${join(dir, 'svid.key')}, bundle: ${bundle}}\n`;
  const head = 'service: orders\ntrustDomain: mesh.local\n';
  const tail = 'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n';
  await writeFile(join(dir, 'fifo-cert.yaml'), `${head}${files(fifo, join(dir, 'bundle.pem'))}${tail}`);
  await writeFile(join(dir, 'zero-bundle.yaml'), `${head}${files(join(dir, 'svid.crt'), '/dev/zero')}${tail}`);
  // a first start (no SVID in identity.dir): the token is needed, and read
  await writeFile(join(dir, 'fifo-token.yaml'), `${head}identity:\n  ca: {url: "https://127.0.0.1:1", bundle: ${join(dir, 'bundle.pem')}, token: ${fifo}}\n  dir: ${join(dir, 'id')}\n${tail}`);
  const cases: Array<[string, RegExp]> = [
    ['fifo-cert.yaml', new RegExp(`^✗ identity: cannot read the SVID files: ${fifo} is a pipe that sent nothing within 3000 ms`, 'm')],
    ['zero-bundle.yaml', /^✗ identity: cannot read the SVID files: \/dev\/zero is not a regular file or a pipe/m],
    ['fifo-token.yaml', new RegExp(`^✗ join token: cannot read ${fifo}: ${fifo} is a pipe that sent nothing`, 'm')],
  ];
  const results = await Promise.all(cases.map(([file]) => doctor(join(dir, file))));
  cases.forEach(([file, pattern], i) => {
    const result = results[i]!;
    t.equal(result.code, 1, `${file}: exit 1, not killed (${result.ms} ms)`);
    t.match(result.stdout, pattern, file);
    t.ok(result.ms < 10_000, `${file}: ${result.ms} ms`);
  });
});
