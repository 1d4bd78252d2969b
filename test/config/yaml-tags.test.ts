// YAML features a config does not use change what a value is without a word: tags (`!!binary`
// turned "b3JkZXJz" into the service "orders"), aliases to an anchor never defined (read as an
// empty value), merge keys (`<<`, inert) and a file of any size. Each is refused where it is.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { open, symlink, writeFile } from 'node:fs/promises';
import { constants as fsConstants, readdirSync, readlinkSync } from 'node:fs';
import { readBoundedFile } from '../../src/bounded-file.js';
import { formatIssue, type ConfigIssue } from '../../src/config/issues.js';
import { parseYamlSource, readYamlSource } from '../../src/config/yaml-source.js';
import { BASE_CONFIG as BASE, configIssues as issuesOf, loadConfigText } from '../helpers/config-text.js';

const lines = (issues: ConfigIssue[]): string[] => issues.map(formatIssue);

t.test('every explicit tag is refused at its line:column, with the key path', async (t) => {
  const source = parseYamlSource('c.yaml', 'service: !!binary b3JkZXJz\nwhen: !!timestamp 2020-01-01\nmine: !foo x\nlist: [a, !!str 12]\nsub: !!map {a: 1}\n');
  t.equal(source.root, undefined, 'nothing is checked on a guess');
  t.same(lines(source.issues), [
    'c.yaml:1:19: service: YAML tags are not supported (!!binary): write the plain value, quoted if it must stay a string',
    'c.yaml:2:19: when: YAML tags are not supported (!!timestamp): write the plain value, quoted if it must stay a string',
    'c.yaml:3:12: mine: YAML tags are not supported (!foo): write the plain value, quoted if it must stay a string',
    'c.yaml:4:17: list[1]: YAML tags are not supported (!!str): write the plain value, quoted if it must stay a string',
    'c.yaml:5:12: sub: YAML tags are not supported (!!map): write the plain value',
  ]);
  // through the sidecar reader too: the service is not silently "orders"
  t.match(await issuesOf(t, BASE.replace('service: orders', 'service: !!binary b3JkZXJz')), [/^c\.yaml:1:19: service: YAML tags are not supported \(!!binary\)/]);
});

t.test('an alias to an undefined anchor names the anchor; a defined one still works', async (t) => {
  t.same(lines(parseYamlSource('c.yaml', 'a: [x]\nendpoints: *nope\n').issues), ['c.yaml:2:12: endpoints: the alias *nope names no anchor: define &nope before it']);
  const ok = parseYamlSource('c.yaml', 'a: &list [x]\nb: *list\n');
  t.same(ok.issues, []);
  t.same(ok.root?.map()?.get('b').list()?.map((v) => v.string()), ['x']);
});

t.test('a merge key gets a hint that merge keys are not supported', async (t) => {
  const issues = await issuesOf(t, `${BASE.replace('inbound:\n', 'defaults: &d\n  timeout: 5s\ninbound:\n  <<: *d\n')}`);
  t.match(issues, [/^c\.yaml:5:1: defaults: unknown key/, /^c\.yaml:8:3: inbound\["<<"\]: merge keys \(<<\) are not supported: write the keys out/]);
  t.equal(issues.length, 2, issues.join('\n'));
});

t.test('a config file over 1 MiB is refused before it is parsed', async (t) => {
  const dir = t.testdir();
  const big = join(dir, 'big.yaml');
  await writeFile(big, `${BASE}# ${'x'.repeat(1024 * 1024)}\n`);
  t.same(lines((await readYamlSource(big)).issues), [`${big}: the config file is larger than 1 MiB, the most a config may be (is this the right file?)`]);
  const fits = join(dir, 'fits.yaml');
  await writeFile(fits, `${BASE}# ${'x'.repeat(1000 * 1024)}\n`);
  t.same((await readYamlSource(fits)).issues, []);
});

/** Resolves once two descriptors of this process point at `path` (the test's writer and the reader under test). */
async function waitForSecondOpen(path: string): Promise<void> {
  const opens = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false; // closed meanwhile
      }
    }).length;
  for (const until = Date.now() + 5000; opens() < 2; ) {
    if (Date.now() > until) throw new Error(`the reader never opened ${path}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('a device or a folder as the config: one clear line at once; a pipe is read as its writer writes, never blocking, for a bounded time', async (t) => {
  const dir = t.testdir();
  const started = Date.now();
  for (const file of ['/dev/zero', '/dev/urandom']) {
    t.same(lines((await readYamlSource(file)).issues), [`${file}: cannot read the config file: it is not a regular file or a pipe (a device or a socket)`]);
  }
  t.same(lines((await readYamlSource(dir)).issues), [`${dir}: cannot read the config file: it is a directory`]);
  t.ok(Date.now() - started < 2000, 'at once: no read of an endless device');
  // a link loop, a path through a file: in words, not Node's errno text (review)
  await symlink(join(dir, 'loop-b'), join(dir, 'loop-a'));
  await symlink(join(dir, 'loop-a'), join(dir, 'loop-b'));
  t.same(lines((await readYamlSource(join(dir, 'loop-a'))).issues), [`${join(dir, 'loop-a')}: cannot read the config file: too many symbolic links; correct the path`]);
  await writeFile(join(dir, 'a-file'), 'x');
  t.same(lines((await readYamlSource(join(dir, 'a-file', 'c.yaml'))).issues), [`${join(dir, 'a-file', 'c.yaml')}: cannot read the config file: a part of the path is a file, not a folder; correct the path`]);
  // a FIFO nobody writes to: waited for until the deadline, not for ever as a blocking open would
  const fifo = join(dir, 'config.fifo');
  execFileSync('mkfifo', [fifo]);
  await t.rejects(readBoundedFile(fifo, 1024, 300), { name: 'BoundedReadError', code: 'too_slow', message: 'is a pipe that sent nothing within 300 ms' });
  // with a writer that writes a config in two pieces: read whole (as `--config <(envsubst ...)` is)
  const writer = await open(fifo, fsConstants.O_RDWR);
  const reading = readYamlSource(fifo);
  await writer.write(BASE.slice(0, 20));
  await writer.write(BASE.slice(20));
  // the writer goes only once the reader holds the pipe: a FIFO's bytes are dropped when its
  // last descriptor closes, and under load the reader's open can come after the writer's close
  await waitForSecondOpen(fifo);
  await writer.close();
  t.same((await reading).issues, [], 'a config from a pipe');
});

t.test('a pipe whose writer never ends is given up after its deadline (PIPE_DEADLINE_MS, 10 s)', async (t) => {
  const dir = t.testdir();
  const fifo = join(dir, 'stuck.fifo');
  execFileSync('mkfifo', [fifo]);
  const writer = await open(fifo, fsConstants.O_RDWR); // holds the pipe open, writes nothing
  t.teardown(() => writer.close());
  const started = Date.now();
  await t.rejects(readBoundedFile(fifo, 1024, 300), { name: 'BoundedReadError', code: 'too_slow', message: 'is a pipe that did not end within 300 ms' });
  t.ok(Date.now() - started < 2000, `given up after ${Date.now() - started} ms`);
});

t.test('aliases that expand far beyond what the file writes out (a "billion laughs") are refused before anything reads them', async (t) => {
  const n = 1000;
  const ids = Array.from({ length: n }, (_, i) => `"spiffe://mesh.local/svc/a${i}"`).join(',');
  // one rule of 1,000 IDs, aliased 1,000 times: a million values from 50 KB
  const text = `inbound:\n  authorize:\n    - &r {from: [${ids}], methods: [GET]}\n${'    - *r\n'.repeat(n - 1)}`;
  const started = Date.now();
  const source = parseYamlSource('c.yaml', text);
  t.equal(source.root, undefined, 'nothing is read');
  t.match(lines(source.issues), [/^c\.yaml: its YAML aliases \(\*name\) expand to more than 200000 values \(the most is 200000, or 4 times the values the file writes out\)/]);
  // measured, never walked: what is left is parsing 50 KB (a walk of a million values takes seconds more)
  t.ok(Date.now() - started < 5000, `at once (${Date.now() - started} ms)`);
  // a cycle: an alias inside its own anchor
  t.same(lines(parseYamlSource('c.yaml', 'a: &x [1, *x]\n').issues), ['c.yaml: an alias (*name) stands inside its own anchor (&name): the value would contain itself']);
  // ordinary reuse: small anchors many times, or one anchor of 2,000 IDs in a few rules
  const reuse = `ids: &ids [${ids.split(',').slice(0, 20).join(',')}]\nrules:\n${'  - {from: *ids}\n'.repeat(100)}`;
  t.same(parseYamlSource('c.yaml', reuse).issues, [], '100 aliases of a 20-item list');
  const few = `ids: &ids [${ids}]\nrules:\n${'  - {from: *ids}\n'.repeat(4)}`;
  t.same(parseYamlSource('c.yaml', few).issues, [], 'an anchor of 1,000 IDs in 4 rules');
});

t.test('a config that is not UTF-8 says so, and where', async (t) => {
  const dir = t.testdir();
  const latin1 = join(dir, 'latin1.yaml');
  await writeFile(latin1, Buffer.concat([Buffer.from('service: ord'), Buffer.from([0xe9]), Buffer.from('rs\n')]));
  t.same(lines((await readYamlSource(latin1)).issues), [`${latin1}:1:13: the config file is not UTF-8 text: the byte 0xe9 here starts no UTF-8 character (a Latin-1 é, say): save the file as UTF-8`]);
  // on a later line, located by line and column (it was a byte offset: a review)
  const later = join(dir, 'latin1-later.yaml');
  await writeFile(later, Buffer.concat([Buffer.from('service: orders\ntrustDomain: m'), Buffer.from([0xe9]), Buffer.from('sh.local\n')]));
  t.same(lines((await readYamlSource(later)).issues), [`${later}:2:15: the config file is not UTF-8 text: the byte 0xe9 here starts no UTF-8 character (a Latin-1 é, say): save the file as UTF-8`]);
  const utf16 = join(dir, 'utf16.yaml');
  await writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('service: orders\n', 'utf16le')]));
  t.same(lines((await readYamlSource(utf16)).issues), [`${utf16}: the config file is not UTF-8 text (it is UTF-16: save it as UTF-8)`]);
  const fine = join(dir, 'fine.yaml');
  await writeFile(fine, `\uFEFF${BASE.replace('service: orders', 'service: orders # ünïcödé ✓')}`);
  t.same((await readYamlSource(fine)).issues, [], 'UTF-8 with a BOM and non-ASCII comments is fine');
});

t.test('[ ] and { } nested thousands deep are refused before the parser recurses through them', async (t) => {
  const started = Date.now();
  // several in one process: the parser once overflowed its stack, and repeated, ended the process
  for (const depth of [1000, 5000, 20000]) {
    const source = parseYamlSource('c.yaml', `service: orders\nlist: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    t.same(lines(source.issues), ['c.yaml:2:71: YAML syntax: [ ] and { } nest more than 64 deep here; a config needs a few levels'], `${depth} deep`);
  }
  t.ok(Date.now() - started < 2000, 'at once');
  // brackets in quotes, comments and route templates do not count
  const fine = `a: "${'['.repeat(100)}"\nb: '${'{'.repeat(100)}'\n# ${'['.repeat(100)}\nroutes: ["/charges/{id}", "/a/{b}/c/{d}"]\nc: /plain/{id}\n`;
  t.same(parseYamlSource('c.yaml', fine).issues, []);
});

t.test('a %YAML directive other than 1.2 is refused: 1.1 would read no as false and 0755 as 493', async (t) => {
  const source = parseYamlSource('c.yaml', '%YAML 1.1\n---\nservice: orders\nlog: {access: no}\n');
  t.equal(source.root, undefined, 'nothing is checked on a guess');
  t.same(lines(source.issues), ['c.yaml:1:1: YAML syntax: %YAML 1.1 is not read here: a config is YAML 1.2 (remove the directive, or write %YAML 1.2)']);
  t.match(await issuesOf(t, `%YAML 1.1\n---\n${BASE}`), [/^c\.yaml:1:1: YAML syntax: %YAML 1\.1 is not read here/], 'through the sidecar reader');
  t.equal((await loadConfigText(t, `%YAML 1.2\n---\n${BASE}`)).service, 'orders', '%YAML 1.2 is read as without it');
});
