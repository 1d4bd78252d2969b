// An OpenAPI spec loaded while the sidecar is at its open-files limit (EMFILE: a reload that
// first turns the check on) fails, and the next load, once descriptors are free, works: Node's
// ES module loader keeps a module that failed to load, so the checker was loaded lazily with
// import() and every later reload naming a spec failed the same way until a restart. A child
// process lowers its own soft limit to the lowest descriptor it has free (prlimit on itself:
// nothing can open), loads a spec, raises the limit and loads it again.

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

const SPEC = { openapi: '3.0.3', info: { title: 'orders', version: '1' }, paths: { '/orders': { get: { responses: { '200': { description: 'ok' } } } } } };

// The child says which descriptor it has free lowest, and waits for a line on stdin before each
// load: the test sets its limit from outside (spawning prlimit takes descriptors the child lacks).
const child = (spec: string) => `
import { readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadGuard } from ${JSON.stringify(GUARD)};
const config = { spec: ${JSON.stringify(spec)}, mode: 'enforce', maxBodySize: 65536 };
const attempt = () => loadGuard(config).then((guard) => 'loaded ' + Object.keys(guard).join(','), (err) => 'failed: ' + err.message);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// (less the descriptor readdirSync held to list them, closed by now)
const open = new Set(readdirSync('/proc/self/fd').filter((fd) => { try { return !/\\/fd$/.test(readlinkSync('/proc/self/fd/' + fd)); } catch { return false; } }).map(Number));
let lowestFree = 0;
while (open.has(lowestFree)) lowestFree++;
process.stdout.write('free ' + lowestFree + '\\n');
await lines.next();
process.stdout.write('at-limit ' + (await attempt()) + '\\n');
await lines.next();
process.stdout.write('after ' + (await attempt()) + '\\n');
process.exit(0);
`;

/** The child's next stdout line. */
function nextLine(out: AsyncIterator<string>): Promise<string> {
  return out.next().then((r) => String(r.value ?? ''));
}

t.test('a spec load that met the open-files limit does not keep failing once descriptors are free', async (t) => {
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
  const atLimit = await nextLine(out);
  await run('prlimit', ['--pid', String(proc.pid), '--nofile=4096:']);
  proc.stdin.write('go\n');
  const after = await nextLine(out);
  t.match(atLimit, /^at-limit failed: .*EMFILE/, 'at the limit the load fails, naming EMFILE');
  t.match(after, /^after loaded spec,/, 'the next load, with descriptors free, works');
});
