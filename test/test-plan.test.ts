// `make test`'s plan (test/helpers/plan-test-run.mjs), run into a folder of the test's own:
// every test file runs exactly once, alone or in one group; the whole-mesh files go at most
// four to a process, spread evenly among the unit tests' groups, whose folders are spread too,
// and the unit test files that run alone come last, in an order tap keeps (it runs files in the
// order of their names);
// the files a group would change keep a process of their own (one that sets process.env or the
// root's t.jobs, one marked `test-run: own process`); a variant shares a process only with
// variants that set the same, never with the file it re-runs; and no group holds more than
// twenty files.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLANNER = join(ROOT, 'test/helpers/plan-test-run.mjs');

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !['helpers', 'fixtures', '.groups'].includes(entry.name)) out.push(...(await testFiles(path)));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(relative(ROOT, path));
  }
  return out;
}

t.test('every test file runs once, in the order and the company the rules say', async (t) => {
  const out = t.testdir();
  const printed = await new Promise<string>((done, fail) =>
    execFile(process.execPath, [PLANNER, out], { cwd: ROOT }, (err, stdout) => (err ? fail(err) : done(stdout))),
  );
  const entries = printed.trim().split(' ');
  const groupPaths = entries.filter((e) => resolve(ROOT, e).startsWith(out));
  const alone = entries.filter((e) => !groupPaths.includes(e));
  t.ok(groupPaths.length > 10, `${groupPaths.length} groups`);
  // tap sorts the files it is given by name: the plan's order is only kept when it is that one
  // (a run once ended on three whole-mesh files, one job busy, the plan's order lost)
  t.same(entries, [...entries].sort((a, b) => a.localeCompare(b, 'en')), "the plan's order is tap's order of the names");

  const grouped: string[] = [];
  const groups: string[][] = [];
  for (const group of groupPaths) {
    const text = await readFile(resolve(ROOT, group), 'utf8');
    const members = (JSON.parse(/for \(const file of (\[.*\])\)/.exec(text)?.[1] ?? '[]') as string[]).map((m) => relative(ROOT, resolve(resolve(ROOT, group), '..', m)).replace(/\.js$/, '.ts'));
    t.ok(members.length >= 1 && members.length <= 20, `${group}: ${members.length} files`);
    grouped.push(...members);
    groups.push(members);
  }

  const all = await testFiles(join(ROOT, 'test'));
  const planned = [...alone, ...grouped];
  t.same([...planned].sort(), [...all].sort(), 'each test file once: none missing, none twice');

  // the whole-mesh files, alone or four to a group, spread among the unit tests' groups (a
  // whole-mesh group computes, a folder of unit tests waits a lot: run apart, the cores idled)
  const isMesh = (f: string) => /^test\/(e2e|workers)\//.test(f);
  const membersOf = new Map(groupPaths.map((g, i) => [g, groups[i]!]));
  const entryFiles = (e: string) => membersOf.get(e) ?? [e];
  t.ok(entries.every((e) => entryFiles(e).every(isMesh) || entryFiles(e).every((f) => !isMesh(f))), 'never with other files');
  t.ok([...membersOf.values()].every((m) => !isMesh(m[0]!) || m.length <= 4), 'at most four to a process');
  const mesh = entries.filter((e) => entryFiles(e).every(isMesh));
  const aloneUnits = entries.filter((e) => !mesh.includes(e) && /^\d+-alone-/.test(e.split('/').pop()!));
  const firstAloneUnit = entries.indexOf(aloneUnits[0]!);
  t.ok(aloneUnits.length > 5 && entries.slice(firstAloneUnit).every((e) => aloneUnits.includes(e)), 'the unit test files that run alone last');
  const mixed = entries.slice(0, firstAloneUnit);
  const meshIn = (part: string[]) => part.filter((e) => mesh.includes(e)).length;
  const half = mixed.slice(0, Math.floor(mixed.length / 2));
  t.ok(Math.abs(meshIn(half) - mesh.length / 2) <= 1, `the whole-mesh groups spread evenly: ${meshIn(half)} of ${mesh.length} in the first half`);
  // the two kinds take turns as evenly as their counts allow: the fewer never two in a row, the
  // more at most ceil(more / fewer) + 1 in a row (spreadEvenly's promise). Strict turns until the
  // fewer ran out held only while the counts differed by one at most: a test file that made one
  // more group broke it, with the plan as even as ever
  const kinds = mixed.map((e) => mesh.includes(e));
  const fewerIsMesh = mesh.length <= mixed.length - mesh.length;
  const fewer = Math.min(mesh.length, mixed.length - mesh.length);
  const more = mixed.length - fewer;
  const runs: Array<{ mesh: boolean; length: number }> = [];
  for (const kind of kinds) {
    const last = runs.at(-1);
    if (last !== undefined && last.mesh === kind) last.length++;
    else runs.push({ mesh: kind, length: 1 });
  }
  t.ok(runs.every((run) => run.mesh !== fewerIsMesh || run.length === 1), 'whole-mesh and unit groups take turns: the fewer never two in a row');
  t.ok(runs.every((run) => run.mesh === fewerIsMesh || run.length <= Math.ceil(more / Math.max(1, fewer)) + 1), `the more at most ${Math.ceil(more / Math.max(1, fewer)) + 1} in a row`);
  const units = mixed.filter((e) => !mesh.includes(e));
  const folderOf = (e: string) => entryFiles(e)[0]!.split('/').slice(1, -1)[0] ?? 'top';
  const together = units.filter((e, i) => i > 0 && folderOf(e) === folderOf(units[i - 1]!));
  t.same(together, [], "no two groups of a folder's unit tests one after the other");

  // the rules, read back from the files themselves
  const VARIANT_IMPORT = /['"](\.{1,2}\/[^'"]+)\.test\.js['"]/;
  const ENV = /^process\.env\.(\w+) = '([^']*)';$/gm;
  const offenders: Record<string, string[]> = { env: [], jobs: [], marked: [], mixed: [], withBase: [] };
  // a group of one file is that file's own process
  for (const members of groups.filter((m) => m.length > 1)) {
    const texts = await Promise.all(members.map((f) => readFile(join(ROOT, f), 'utf8')));
    const variants = members.filter((_, i) => VARIANT_IMPORT.test(texts[i]!));
    // a group is plain files, or variants that all set the same variables to the same values
    const settings = new Set(texts.map((text) => [...text.matchAll(ENV)].map((m) => `${m[1]}=${m[2]}`).sort().join(' ')));
    if (variants.length > 0 && (variants.length !== members.length || settings.size !== 1)) offenders.mixed!.push(members.join(', '));
    members.forEach((file, i) => {
      const text = texts[i]!;
      if (variants.length === 0 && /process\.env(\.\w+|\[[^\]]+\])\s*=[^=]/.test(text)) offenders.env!.push(file);
      if (/^t\.jobs\s*=/m.test(text)) offenders.jobs!.push(file);
      if (text.includes('// test-run: own process')) offenders.marked!.push(file);
      const base = VARIANT_IMPORT.exec(text)?.[1];
      if (base !== undefined && members.includes(relative(ROOT, join(ROOT, file, '..', `${base}.test.ts`)))) offenders.withBase!.push(file);
    });
  }
  t.same(offenders, { env: [], jobs: [], marked: [], mixed: [], withBase: [] }, 'no group holds a file that sets process.env or t.jobs or asks to be alone, mixes variants with others or different settings, or a variant with the file it re-runs');
  const groupOf = (file: string) => groups.findIndex((members) => members.includes(file));
  t.ok(groupOf('test/outbound/balancing.test.ts') !== -1 && groupOf('test/outbound/codec-node-balancing.test.ts') !== -1, 'a variant and the file it re-runs are grouped');
  t.not(groupOf('test/outbound/balancing.test.ts'), groupOf('test/outbound/codec-node-balancing.test.ts'), 'in different processes');
  t.not(groupOf('test/inbound/codec-node-http1.test.ts'), groupOf('test/inbound/app-client-undici-http1.test.ts'), 'variants of different settings apart');
  const aloneOrOwnGroup = (file: string) => alone.includes(file) || groups[groupOf(file)]?.length === 1;
  t.ok(aloneOrOwnGroup('test/admin/idle-connections.test.ts'), 'a file marked `test-run: own process` is alone');
  t.ok(aloneOrOwnGroup('test/ca/root-add-crash.test.ts'), 'a file that sets t.jobs is alone');
});
