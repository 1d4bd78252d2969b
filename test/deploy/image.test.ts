// The container image, checked without a container engine: the Dockerfile's stages, what it
// copies (every source exists after `make build`, and .dockerignore lets nothing else into the
// build context: no certs, keys or tokens), its non-root user (the uid the Kubernetes manifests
// run as), and its entrypoint, run for real with `--help` from a production-only install
// (`npm ci --omit=dev` in a temporary copy of what the runtime stage holds), and started through
// a link, as /usr/local/bin/meshcar is, node runs with the launcher's V8 flags. `make image`
// without a working engine says that it skipped and exits 0.

import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** The Dockerfile's instructions by stage (comments and blank lines dropped, continuations joined). */
async function stages(): Promise<Instruction[][]> {
  const text = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const result: Instruction[][] = [];
  for (const line of text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [op, ...rest] = line.split(/\s+/);
    if (op?.toUpperCase() === 'FROM') result.push([]);
    result[result.length - 1]?.push({ op: (op as string).toUpperCase(), args: rest.join(' ') });
  }
  return result;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

t.test('two stages on Node 20: build with npm ci and tsc, run on a slim image', async (t) => {
  const [build, runtime, ...more] = await stages();
  t.equal(more.length, 0);
  t.match(build?.[0]?.args, /^node:20[-.\w]* AS build$/i);
  t.match(runtime?.[0]?.args, /^node:20[-.\w]*slim$/);
  t.ok(build?.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args)) && build.some((i) => i.op === 'RUN' && /tsc -p tsconfig.json/.test(i.args)), 'npm ci, then tsc');
  t.ok(runtime?.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)), 'production dependencies only at run time');
});

t.test('every file the Dockerfile copies exists after make build, and nothing else enters the context', async (t) => {
  const all = await stages();
  const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  t.equal(ignore[0], '*', '.dockerignore starts by leaving everything out');
  const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
  t.notOk(allowed.some((p) => /^(certs|\.git|node_modules|dist|test|bench)\b/.test(p) || /key|token|\.pem$/i.test(p)), `only these enter the build context: ${allowed.join(', ')}`);
  const workdirOf = (stage: Instruction[]) => stage.find((i) => i.op === 'WORKDIR')?.args ?? '/';
  for (const [n, stage] of all.entries()) {
    for (const copy of stage.filter((i) => i.op === 'COPY')) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1];
      const parts = copy.args.replace(/--\S+/g, '').trim().split(/\s+/);
      const sources = parts.slice(0, -1);
      for (const source of sources) {
        if (from) {
          // a path of an earlier stage: its WORKDIR is the repository, built by make build
          const stageDir = workdirOf(all.find((s) => s[0]?.args.endsWith(` AS ${from}`)) ?? []);
          const local = join(ROOT, source.replace(new RegExp(`^${stageDir}/?`), ''));
          t.ok(await exists(local), `stage ${n}: COPY --from=${from} ${source} (${local.slice(ROOT.length)}) exists after make build`);
        } else {
          t.ok(await exists(join(ROOT, source)), `stage ${n}: COPY ${source} exists`);
          t.ok(allowed.includes(source.replace(/\/$/, '')), `${source} is let into the build context by .dockerignore`);
        }
      }
    }
  }
  t.ok(await exists(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js (the entrypoint\'s target) is built');
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  t.notMatch(text.replace(/^#.*$/gm, ''), /\b(ENV|ARG)\s+\S*(TOKEN|SECRET|PASSWORD|KEY)/i, 'no secret passed in as ENV or ARG');
});

t.test('the ports it exposes: inbound and admin, never the outbound', async (t) => {
  const runtime = (await stages())[1] as Instruction[];
  const exposed = runtime.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, '')));
  // the outbound lends the sidecar's identity to any client: `docker run -P` would publish it
  const frontend = await readFile(join(ROOT, 'config/kubernetes/base/frontend.yaml'), 'utf8');
  const outbound = Number(/outbound:\s*\n\s*listen: 127\.0\.0\.1:(\d+)/.exec(frontend)?.[1]);
  t.ok(outbound > 0, `the outbound port of the manifests: ${outbound}`);
  t.notOk(exposed.includes(outbound), `EXPOSE ${exposed.join(' ')}: not the outbound`);
  t.ok(exposed.includes(15443) && exposed.includes(15000), 'inbound and admin');
});

t.test('a non-root user, the uid the Kubernetes manifests run as', async (t) => {
  const runtime = (await stages())[1] as Instruction[];
  const user = runtime.filter((i) => i.op === 'USER').pop()?.args;
  t.equal(user, '1000:1000');
  const manifests = await readFile(join(ROOT, 'config/kubernetes/base/orders.yaml'), 'utf8');
  t.match(manifests, /runAsUser: 1000\n/);
});

t.test('the entrypoint runs --help from a production-only install', async (t) => {
  const runtime = (await stages())[1] as Instruction[];
  t.equal(runtime.find((i) => i.op === 'ENTRYPOINT')?.args, '["meshcar"]');
  const link = /ln -s (\S+) \/usr\/local\/bin\/meshcar/.exec(runtime.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n'))?.[1];
  const workdir = runtime.find((i) => i.op === 'WORKDIR')?.args as string;
  t.equal(link, `${workdir}/dist/cli.js`, 'meshcar on the PATH is dist/cli.js, run by its own #! line');

  // what the runtime stage holds: package files, production dependencies, dist/
  const app = await mkdtemp(join(tmpdir(), 'meshcar-image-'));
  t.teardown(() => rm(app, { recursive: true, force: true }));
  for (const f of ['package.json', 'package-lock.json', 'dist']) await cp(join(ROOT, f), join(app, f), { recursive: true });
  await execFileAsync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: app, env: { ...process.env, NODE_ENV: 'production' } });
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) t.ok(await exists(join(app, 'node_modules', dep)), `${dep} installed`);
  t.same((await Promise.all(Object.keys(pkg.devDependencies).map(async (d) => ((await exists(join(app, 'node_modules', d))) ? d : undefined)))).filter(Boolean), [], 'no development dependency installed');

  const entry = join(app, 'dist', 'cli.js');
  const help = await execFileAsync(entry, ['--help'], { cwd: tmpdir() });
  t.match(help.stdout, /meshcar/);
  t.match(help.stdout, /\brun\b/);
  const run = await execFileAsync(entry, ['run', '--help'], { cwd: tmpdir() });
  t.match(run.stdout, /usage: meshcar run --config FILE/);
  const version = await execFileAsync(entry, ['--version'], { cwd: tmpdir() }).catch((err: { stdout: string }) => err);
  t.match(version.stdout, new RegExp(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version.replace(/\./g, '\\.')), 'the version comes from the copied package.json');
  // the image runs `meshcar`, a link to dist/cli.js: its #! line must reach node with the V8
  // flags the README gives (a link, or a start through another path, that lost them would run
  // on V8's defaults unseen: --help answers the same). Seen in /proc while the sidecar waits
  // for its config on a pipe.
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const flags = /The `meshcar` launcher[^]*?with two V8 flags\. `(--[\w-]+=\d+)`[^]*?`(--[\w-]+=\d+)`/.exec(readme)?.slice(1) ?? [];
  t.equal(flags.length, 2, `the README names the launcher's flags: ${flags.join(' ')}`);
  const onPath = join(app, 'meshcar');
  await symlink(join(app, 'dist', 'cli.js'), onPath);
  const child = spawn(onPath, ['run', '--config', '/dev/stdin'], { stdio: ['pipe', 'ignore', 'ignore'], cwd: tmpdir() });
  t.teardown(() => void child.kill('SIGKILL'));
  let argv: string[] = [];
  // `/usr/bin/env -S ...` first, until it execs node (its own argv names `run` too: read as the
  // sidecar's on a busy host, it failed the check)
  for (let i = 0; i < 250 && !(argv.includes('run') && /(^|\/)node$/.test(argv[0] ?? '')); i++) {
    await new Promise((r) => setTimeout(r, 20));
    argv = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
  }
  t.same(argv.slice(1, 3), flags, `run through the link: ${argv.join(' ')}`);
  t.match(argv[0], /(^|\/)node$/, 'as node');
  child.stdin.end();
});

const engine = await execFileAsync('docker', ['info']).then(() => 'docker', () => execFileAsync('podman', ['info']).then(() => 'podman', () => undefined));

t.test('make image without a container engine says it skipped', { skip: engine ? `${engine} works here: make image would really build (the tests do not)` : false }, async (t) => {
  const out = await execFileAsync('make', ['-s', 'image'], { cwd: ROOT });
  t.match(out.stdout, /make image: skipped: no docker or podman engine is available here/);
});
