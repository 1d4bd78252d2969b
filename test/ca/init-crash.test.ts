// `meshcar ca init` killed at any of its writes (a real SIGKILL of a child process) leaves a
// folder that says so: `ca status` and `ca serve` refuse it in one line naming the init to run
// again, and the Kubernetes init container's command (config/kubernetes/base/ca.yaml, run as
// written with the folder's path swapped in) finishes it into a CA that signs. Before, a kill
// after the keys left issuer.key, which the init container took for a CA, and `ca init` then
// refused the files: the CA never started. A CA whose init finished is never re-keyed, by the
// init container's command or by `ca init` without --force.

import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startTestCa, makeCaDir } from '../helpers/ca.js';
import { runStepKilledAt, signFromCrashedFolder } from '../helpers/ca-crash.js';
import { runCaInitContainer } from '../helpers/ca-init-container.js';

const CLI = resolve('dist/cli.js');

interface Run { code: number; stdout: string; stderr: string }

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const cli = (args: string[]) => run(process.execPath, [CLI, ...args]);

/** The CA init container's script, with its folder swapped for `dir` (no bundle ConfigMap yet) and meshcar on PATH. */
function initContainer(dir: string, bin: string): Promise<Run> {
  return runCaInitContainer(dir, join(bin, 'no-bundle-configmap'), bin);
}

// where the kill lands: `skip` writes onto (or removals of) the file are let through first
const CRASH_POINTS = [
  { file: 'root.key', skip: 0, what: 'marked, no key yet' },
  { file: 'root.crt', skip: 0, what: 'both keys written (issuer.key present), no certificate' },
  { file: 'token-keys.json', skip: 1, what: 'everything but the token key list' },
  { file: 'state.json', skip: 1, what: 'everything but the last state.json' },
];

t.jobs = 2;

for (const point of CRASH_POINTS) {
  t.test(`killed at ${point.file} (${point.what}): status and serve say what to run, the init container finishes it`, async (t) => {
    // t.testdir() empties its folder at each call: one call, two subfolders
    const base = t.testdir();
    const dir = join(base, 'ca');
    t.equal(await runStepKilledAt(dir, 'init', point.file, point.skip), 'SIGKILL', `killed at ${point.file}`);
    const again = `run "meshcar ca init --dir ${dir} --trust-domain mesh.local" again`;

    const status = await cli(['ca', 'status', '--dir', dir]);
    t.equal(status.code, 1, 'ca status fails');
    t.equal(status.stderr.trim().split('\n').length, 1, `one line: ${status.stderr}`);
    t.ok(status.stderr.includes('did not finish') && status.stderr.includes(again), `names the init to run: ${status.stderr}`);
    await t.rejects(startTestCa({}, dir), { message: new RegExp(`did not finish.*${again.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) }, 'ca serve refuses it likewise');

    const bin = join(base, 'bin');
    const finished = await initContainer(dir, bin);
    t.equal(finished.code, 0, `the init container's command finishes it: ${finished.stderr}`);
    t.match(finished.stdout, /did not finish.*\n.*created CA/, 'and says it redid an unfinished init');
    const served = await signFromCrashedFolder(dir);
    t.equal(served.status, 200, 'a CA server on the folder signs');
    t.ok(served.verifies, 'a leaf that verifies under the bundle it hands out');

    const rootKey = await readFile(join(dir, 'root.key'), 'utf8');
    const issuerKey = await readFile(join(dir, 'issuer.key'), 'utf8');
    const skipped = await initContainer(dir, bin);
    t.equal(skipped.code, 0, `the init container on the finished CA: ${skipped.stderr}`);
    const refused = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local']);
    t.equal(refused.code, 1, 'ca init without --force refuses the finished CA');
    t.match(refused.stderr, /already exists.*--force/);
    t.equal(await readFile(join(dir, 'root.key'), 'utf8'), rootKey, 'root key kept');
    t.equal(await readFile(join(dir, 'issuer.key'), 'utf8'), issuerKey, 'issuer key kept');
  });
}

t.test('part of a CA with no unfinished-init mark (files lost, or an older meshcar killed) is refused saying what is missing and what to do', async (t) => {
  const dir = await makeCaDir();
  await rm(join(dir, 'issuer.crt'));
  await rm(join(dir, 'state.json'));
  const rootKey = await readFile(join(dir, 'root.key'), 'utf8');
  const refused = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local']);
  t.equal(refused.code, 1);
  t.equal(refused.stderr.trim().split('\n').length, 1, `one line: ${refused.stderr}`);
  t.match(refused.stderr, /holds part of a CA .*missing issuer\.crt.*restore the missing files from a backup.*--trust-domain mesh\.local --force/);
  t.equal(await readFile(join(dir, 'root.key'), 'utf8'), rootKey, 'nothing re-keyed');
});

// its bundle.pem read as "part of a CA", and the fix offered was --force: a CA among a sidecar's keys (review)
t.test("a sidecar's SVID folder given to ca init is said to be one, without offering to force it", async (t) => {
  const dir = t.testdir({ 'svid.crt': 'x\n', 'svid.key': 'x\n', 'bundle.pem': 'x\n' });
  const refused = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'mesh.local']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^meshcar: \S+ holds a sidecar's SVID \(svid\.crt, svid\.key, bundle\.pem\), not a CA: give ca init an empty or new folder for the CA\n$/);
  t.notMatch(refused.stderr, / --force/, 'no --force offered');
});

t.test('a state.json that cannot be read (a folder in its place) is one line from status, not a stack trace', async (t) => {
  const dir = await makeCaDir();
  await rm(join(dir, 'state.json'));
  await mkdir(join(dir, 'state.json'));
  const status = await cli(['ca', 'status', '--dir', dir]);
  t.equal(status.code, 1, `exit 1: ${status.stderr}`);
  t.equal(status.stderr.trim().split('\n').length, 1, `one line: ${status.stderr}`);
  t.match(status.stderr, /state\.json cannot be read \(EISDIR.*restore it from a backup/);
});

t.test('the init container gives the CA folder back to its user after the kubelet opened it to the group', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'ca');
  const bin = join(base, 'bin');
  t.equal((await initContainer(dir, bin)).code, 0, 'the first start makes the CA');
  // the kubelet's fsGroup pass on a volume whose root did not match (restored, moved): group
  // write and setgid on the folders, group read and write on the files
  const all = async (at: string): Promise<string[]> => [at, ...(await Promise.all((await readdir(at, { withFileTypes: true })).map((e) => (e.isDirectory() ? all(join(at, e.name)) : [join(at, e.name)])))).flat()];
  for (const path of await all(dir)) await chmod(path, (await stat(path)).isDirectory() ? 0o2770 : 0o660);
  await t.rejects(startTestCa({}, dir), { message: /is writable by its group \(mode 2770\)/ }, 'ca serve refuses the folder as the kubelet left it');
  const again = await initContainer(dir, bin);
  t.equal(again.code, 0, `the init container at the next start: ${again.stderr}`);
  const open = [];
  for (const path of await all(dir)) if (((await stat(path)).mode & 0o077) !== 0) open.push(path);
  t.same(open, [], 'nothing in the folder is left to the group or others');
  const served = await signFromCrashedFolder(dir);
  t.equal(served.status, 200, 'and the CA serves from it');
});
