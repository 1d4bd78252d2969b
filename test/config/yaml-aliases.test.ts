// YAML aliases (*name) are followed in one pass over the document: each was resolved by the
// parser's Alias.resolve(doc), which walks the whole document per call, so a config of 8,000
// aliases of one anchor (33 KB) took 26 s of CPU to check and stalled a running sidecar's
// reload, /ready and traffic as long; a CA config's serverNames the same. An alias stands for
// the latest definition of its anchor before it.

import t from 'tap';
import { join } from 'node:path';
import { loadCaConfig } from '../../src/config/ca-config.js';
import { parseYamlSource } from '../../src/config/yaml-source.js';
import { BASE_CONFIG as BASE, loadConfigText } from '../helpers/config-text.js';

const ALIASES = 20_000;
const PEER = `spiffe://mesh.local/svc/${'a'.repeat(120)}`;

/** Milliseconds of this process's CPU (user and system) that `work` took. */
async function cpuMs<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(start);
  return { result, ms: (used.user + used.system) / 1000 };
}

t.test(`${ALIASES} aliases of one anchor: read in time linear in the file, each the anchor's value`, async (t) => {
  const rule = (items: string) => `${BASE}  authorize:\n    - from: [&peer "${PEER}"${items}]\n`;
  const aliased = rule(', *peer'.repeat(ALIASES));
  parseYamlSource('c.yaml', rule(', *peer, peer'.repeat(10))); // the parser compiled first
  // what a file of that size costs the parser anyway: the same list of short plain values
  const written = await cpuMs(async () => parseYamlSource('c.yaml', rule(', peer'.repeat(ALIASES))));
  const read = await cpuMs(async () => parseYamlSource('c.yaml', aliased));
  t.same(read.result.issues, []);
  t.ok(read.ms < 1000, `read and vetted in ${read.ms.toFixed(0)} ms of CPU (under 1 s; minutes when each alias walked the whole document)`);
  t.ok(read.ms < 2 * written.ms + 50, `about what as many plain values take (${written.ms.toFixed(0)} ms)`);
  // through the sidecar's readers: every alias is the anchored ID (their own cost per value
  // is the same written out)
  const { result: config, ms } = await cpuMs(() => loadConfigText(t, aliased));
  const from = config.inbound?.authorize?.[0]?.from ?? [];
  t.equal(from.length, ALIASES + 1);
  t.ok(from.every((id) => id === PEER), 'every alias reads as the anchored ID');
  t.ok(ms < 2000, `the whole sidecar config loaded in ${ms.toFixed(0)} ms of CPU`);
});

t.test("a CA config's serverNames aliased thousands of times: read as quickly", async (t) => {
  const file = join(t.testdir({ 'ca.yaml': `trustDomain: mesh.local\ndir: certs/ca\nlisten: 127.0.0.1:8443\nserverNames: [&host ca.mesh.local${', *host'.repeat(ALIASES)}]\n` }), 'ca.yaml');
  const { result: config, ms } = await cpuMs(() => loadCaConfig(file));
  t.equal(config.serverNames.length, ALIASES + 1);
  t.equal(config.serverNames[ALIASES], 'ca.mesh.local');
  t.ok(ms < 2000, `loaded in ${ms.toFixed(0)} ms of CPU`);
});

t.test('an alias stands for the latest definition of its anchor before it', async (t) => {
  const source = parseYamlSource(
    'c.yaml',
    ['list: [&x 1, *x, &x 2, *x]', 'after: *x', 'outer: &m {v: &x 3, w: *x}', 'again: &x 4', 'm: *m', 'last: *x', 'key: {&k name: 5, other: *k}', ''].join('\n'),
  );
  t.same(source.issues, []);
  const root = source.root?.map();
  t.same(root?.get('list').list()?.map((v) => v.number()), [1, 1, 2, 2]);
  t.equal(root?.get('after').number(), 2);
  t.same(root?.get('m').map()?.entries().map(([key, value]) => [key, value.number()]), [['v', 3], ['w', 3]], 'the map of the anchor &m, as it was written');
  t.equal(root?.get('last').number(), 4);
  t.equal(root?.get('key').map()?.get('other').string(), 'name', 'an anchor on a key');
  // an alias before its anchor names none, though the anchor comes later
  t.same(parseYamlSource('c.yaml', 'a: *later\nb: &later 1\n').issues.map((i) => i.message), ['the alias *later names no anchor: define &later before it']);
  // inside its own anchor: a cycle, still refused
  t.match(parseYamlSource('c.yaml', 'a: &x {b: [*x]}\n').issues.map((i) => i.message), [/stands inside its own anchor/]);
});
