// Plans `make test`'s run and prints the files tap is to run, in order. tap starts a process per
// test file, and each costs ~0.85 s of CPU before its first assertion (tap's own module hooks
// and imports: measured with --cpu-prof), ~330 s of a ~950 s suite on two cores. So the unit
// tests of one folder run together: a group file under test/.groups/ (written here, git-ignored)
// imports them one after another in one process, each inside a subtest named after it, so one
// file's tests end before the next file's module is loaded. A variant (a file that re-runs
// another with a setting: `process.env.MESHCAR_TEST_H2_CODEC = 'node'`, then the import) goes
// with the variants of its folder that set the same, never with the file it re-runs (a module
// loads once per process), which goes with the plain files. The whole-mesh files (test/e2e,
// test/workers: 10-25 s each) go four to a process. The groups run in an order that mixes
// what waits with what computes (below); the group files' names make that order tap's. A file
// runs in a process of its own (a group of one):
// - when it sets process.env (other than as a variant) or the root test's `t.jobs` (a group
//   would run the next files' tests in parallel too), or says `// test-run: own process` (it
//   measures the process: memory, open timers); and a variant of such a file.
// `npx tap FILE` and a bare `npx tap` still run every file on its own.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TEST = join(ROOT, 'test');
// where the group files go: test/.groups, or the folder given (test/test-plan.test.ts)
const GROUPS = process.argv[2] ? resolve(process.argv[2]) : join(TEST, '.groups');
const GROUP_SIZE = 20; // each process saved is ~0.95 s of CPU; small enough that tap's four jobs stay busy to the end
// whole-mesh files take 10-25 s each: four to a process keeps the run's tail short
const WHOLE_MESH_GROUP_SIZE = 4;
const WHOLE_MESH = ['e2e', 'workers'];

function testFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!['helpers', 'fixtures', '.groups'].includes(entry.name)) out.push(...testFiles(path));
    } else if (entry.name.endsWith('.test.ts')) out.push(relative(ROOT, path));
  }
  return out.sort();
}

const files = testFiles(TEST);
const source = new Map(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));
/** What each test file imports of other test files (a variant re-runs another with a setting). */
const importsOf = new Map();
for (const [file, text] of source) {
  const bases = [...text.matchAll(/['"](\.{1,2}\/[^'"]+)\.test\.js['"]/g)].map((m) => relative(ROOT, join(ROOT, file, '..', `${m[1]}.test.ts`)));
  if (bases.length > 0) importsOf.set(file, bases);
}
const imported = new Set([...importsOf.values()].flat());
const SETS_ENV = /process\.env(\.\w+|\[[^\]]+\])\s*=[^=]|delete process\.env/;
/** A file that changes the whole process for the files after it: its own process. */
const changesProcess = (text) => /^t\.jobs\s*=/m.test(text) || text.includes('// test-run: own process');
const wholeMesh = (file) => WHOLE_MESH.includes(file.split('/')[1]);
/**
 * A variant that may share a process with other variants setting the same variables: neither
 * it nor its base changes the process otherwise, and its base is no variant itself. (A module
 * loads once per process: a variant never shares one with the file it re-runs, which goes with
 * the plain files.)
 */
const variantKey = (file) => {
  const bases = importsOf.get(file);
  if (!bases || imported.has(file)) return undefined;
  if (changesProcess(source.get(file)) || bases.some((b) => !source.has(b) || importsOf.has(b) || changesProcess(source.get(b)) || SETS_ENV.test(source.get(b)))) return undefined;
  return [...source.get(file).matchAll(/^process\.env\.(\w+) = '([^']*)';$/gm)].map((m) => `${m[1]}=${m[2]}`).sort().join(' ');
};
const ownProcess = (file) => {
  const text = source.get(file);
  if (importsOf.has(file)) return variantKey(file) === undefined;
  // a base its variants re-run stays with the plain files unless it changes the process itself
  return SETS_ENV.test(text) || changesProcess(text);
};

const alone = files.filter(ownProcess);
const byFolder = new Map();
for (const file of files.filter((f) => !ownProcess(f))) {
  const key = variantKey(file);
  const folder = (file.split('/').slice(1, -1).join('-') || 'top') + (key === undefined ? '' : `-${key.replace(/MESHCAR_TEST_/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-')}`);
  byFolder.set(folder, [...(byFolder.get(folder) ?? []), file]);
}

rmSync(GROUPS, { recursive: true, force: true });
mkdirSync(GROUPS, { recursive: true });
const wholeMeshGroups = [];
const folderGroups = []; // [folder, group] of the unit tests (a variant's group, inbound-h2-codec-node, is inbound's)
for (const [folder, members] of byFolder) {
  const count = Math.ceil(members.length / (wholeMesh(members[0]) ? WHOLE_MESH_GROUP_SIZE : GROUP_SIZE));
  for (let i = 0; i < count; i++) {
    // every count-th file, so each group of a big folder gets a share of its slow files
    const group = { name: `${folder}${count > 1 ? `-${i + 1}` : ''}`, files: members.filter((_, n) => n % count === i) };
    if (wholeMesh(members[0])) wholeMeshGroups.push(group);
    else folderGroups.push([folder.split('-')[0], group]);
  }
}

/**
 * `lists` merged so that each list's items are spread evenly over the result: item i of a list
 * of n goes at (i + 0.5) / n of the way (ties in the order the lists are given).
 */
function spreadEvenly(lists) {
  const placed = lists.flatMap((list, which) => list.map((item, i) => ({ item, at: (i + 0.5) / list.length, which })));
  return placed.sort((a, b) => a.at - b.at || a.which - b.which).map((p) => p.item);
}

// The order. The run is CPU-bound (two cores, four jobs) except where the jobs running at once
// all wait: the unit tests of one folder (test/outbound's timeouts, backoffs and drains) wait a
// lot, a whole-mesh group computes (sidecar processes starting, TLS). Run folder by folder,
// four outbound groups at once left the cores 20-90% idle for a minute; so each folder's groups
// are spread over the unit tests' order, and that order is spread among the whole-mesh groups
// (measured, one sitting: 567 and 575 s of wall time before, 537 s after; idle CPU 114 s, then
// 108 s, 42 of them in the last 80 s; `make test` from a clean clone 598 s, was 638 s). The
// unit test files that run alone come last: all short (2-15 s), so the run does not end with
// one job busy on a long group.
const aloneGroup = (file) => ({ name: `alone-${file.slice('test/'.length, -'.test.ts'.length).replace(/\//g, '-')}`, files: [file] });
const folders = [...new Set(folderGroups.map(([folder]) => folder))];
const unitOrder = spreadEvenly(folders.map((f) => folderGroups.filter(([folder]) => folder === f).map(([, group]) => group)));
const meshOrder = [...alone.filter(wholeMesh).map(aloneGroup), ...wholeMeshGroups];
const order = [...spreadEvenly([meshOrder, unitOrder]), ...alone.filter((file) => !wholeMesh(file)).map(aloneGroup)];

// tap runs the files it is given in the order of their names, whatever order they come in: a
// group's name starts with its place in the order, three digits
const groupFiles = order.map(({ name, files: chunk }, place) => {
  const file = join(GROUPS, `${String(place).padStart(3, '0')}-${name}.test.ts`);
  writeFileSync(file, groupSource(chunk));
  return relative(ROOT, file);
});

function groupSource(chunk) {
  return [
    '// Written by test/helpers/plan-test-run.mjs for `make test`: runs these files in one process.',
    "import t from 'tap';",
    `t.setTimeout(${120_000 * chunk.length});`,
    `for (const file of ${JSON.stringify(chunk.map((f) => relative(GROUPS, join(ROOT, f)).replace(/\.ts$/, '.js')))}) {`,
    '  // an import inside a subtest: its tests queue behind it, and run before the next import',
    '  await t.test(file, async () => { await import(file); });',
    '}',
    '',
  ].join('\n');
}

const byName = (a, b) => a.localeCompare(b, 'en'); // tap's own order
process.stdout.write(`${groupFiles.sort(byName).join(' ')}\n`);
