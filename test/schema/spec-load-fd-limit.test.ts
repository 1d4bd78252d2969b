// A spec load, or its first compile, that met the open-files limit (EMFILE: a reload that first
// turns the OpenAPI check on) fails, and the next one, once descriptors are free, works. Two
// loaders kept such a failure for the process's life: Node's ES module loader (the checker was a
// lazy import()), and its CommonJS loader for a package.json it could not open (a require of
// Ajv at the limit then said "Cannot find module 'ajv-formats'" ever after). A child process
// runs the built modules (as a sidecar does); the test sets its soft limit from outside
// (prlimit) to the lowest descriptor it has free, so nothing can open, and back.

import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LOADER = new URL('../helpers/ts-loader.mjs', import.meta.url).pathname;
// the built modules, as a sidecar runs them (the sources' spec worker boots through tsx, whose failed load the test's module hooks keep)
const GUARD = new URL('../../dist/schema/guard.js', import.meta.url).href;
const COMPILERS = new URL('../../dist/schema/compilers.js', import.meta.url).href;

const SPEC = { openapi: '3.0.3', info: { title: 'orders', version: '1' }, paths: { '/orders': { get: { responses: { '200': { description: 'ok' } } } } } };

// The child says which descriptor it has free lowest, then waits for a line on stdin before
// each round (a compile of Ajv's compilers, then a whole spec load): spawning prlimit itself
// would take descriptors the child lacks.
const child = (spec: string) => `
import { readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadGuard } from ${JSON.stringify(GUARD)};
import { compilersFor } from ${JSON.stringify(COMPILERS)};
const config = { spec: ${JSON.stringify(spec)}, mode: 'enforce', maxBodySize: 65536 };
const failed = (err) => 'failed: ' + err.message;
const compile = async () => { try { return 'compiled ' + Object.keys(compilersFor('3.0.3')).join(','); } catch (err) { return failed(err); } };
const load = () => loadGuard(config).then((guard) => 'loaded ' + Object.keys(guard).join(','), failed);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// (less the descriptor readdirSync held to list them, closed by now)
const open = new Set(readdirSync('/proc/self/fd').filter((fd) => { try { return !/\\/fd$/.test(readlinkSync('/proc/self/fd/' + fd)); } catch { return false; } }).map(Number));
let lowestFree = 0;
while (open.has(lowestFree)) lowestFree++;
process.stdout.write('free ' + lowestFree + '\\n');
await lines.next();
process.stdout.write(JSON.stringify([await compile(), await load()]) + '\\n');
await lines.next();
process.stdout.write(JSON.stringify([await compile(), await load()]) + '\\n');
process.exit(0);
`;

function nextLine(out: AsyncIterator<string>): Promise<string> {
  return out.next().then((r) => String(r.value ?? ''));
}

t.test('a spec load or compile that met the open-files limit does not keep failing once descriptors are free', async (t) => {
  const dir = t.testdir();
  const spec = join(dir, 'orders.json');
  await writeFile(spec, JSON.stringify(SPEC));
  const script = join(dir, 'child.mjs');
  await writeFile(script, child(spec));
  const proc = spawn(process.execPath, ['--import', LOADER, script], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => proc.kill());
  const out = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const free = Number((await nextLine(out)).split(' ')[1]);
  await run('prlimit', ['--pid', String(proc.pid), `--nofile=${free}:`]);
  proc.stdin.write('go\n');
  const [compileAtLimit, loadAtLimit] = JSON.parse(await nextLine(out)) as [string, string];
  await run('prlimit', ['--pid', String(proc.pid), '--nofile=4096:']);
  proc.stdin.write('go\n');
  const [compileAfter, loadAfter] = JSON.parse(await nextLine(out)) as [string, string];
  t.match(compileAtLimit, /^failed: .*EMFILE/, 'at the limit the first compile fails, naming EMFILE (Ajv cannot be read)');
  t.match(loadAtLimit, /^failed: .*EMFILE/, 'and so does a spec load');
  t.equal(compileAfter, 'compiled params,body,requestViews', 'with descriptors free the compile works');
  t.match(loadAfter, /^loaded spec,/, 'and the spec loads');
});
