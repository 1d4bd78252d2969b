// `meshcar check` and `meshcar run` quote a config's values and keys in their issue lines, and
// JSON.stringify leaves C1 controls (U+009B, a one-byte CSI a terminal acts on) and bidi
// overrides (U+202E, which reverses what the line shows) as they are: each issue and warning
// line goes through the same escaping as every other stderr line of the command line.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const CLI = 'dist/cli.js';

function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })));
}

t.test('issue lines of check and run escape C1 controls and bidi overrides', async (t) => {
  const dir = t.testdir();
  const config = join(dir, 'c.yaml');
  await writeFile(config, `service: "ord\u009b31mers"\ntrustDomain: mesh.local\nidentity: {files: {cert: a, key: b, bundle: c}}\n"col\u202eour": 1\n`);
  const caConfig = join(dir, 'ca.yaml');
  await writeFile(caConfig, `trustDomain: mesh.local\ndir: ca\nserverNames: ["x\u0085y"]\n`);
  for (const args of [['check', '--config', config], ['run', '--config', config], ['check', '--config', caConfig], ['ca', 'serve', '--config', caConfig]]) {
    const { code, stderr } = await cli(args);
    t.equal(code, 1, `${args.join(' ')}: fails`);
    t.notMatch(stderr, /[\u0080-\u009f\u202a-\u202e]/, `${args.join(' ')}: no raw C1 control or bidi override`);
    t.match(stderr, /\\u009b|\\u202e|\\u0085/, `${args.join(' ')}: written as escapes`);
  }
});
