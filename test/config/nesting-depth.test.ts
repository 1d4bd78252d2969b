// [ ] and { } nested deep are refused before the parser recurses through them, judged as the
// parser reads the text: a quote inside a plain value (a'b, it's) opened a "quote" in the
// depth scan, which then skipped the rest of the line, so `extra: [a'b, [[[...]]]]` 300,000
// deep reached the parser (2-4 s of CPU and 400-700 MB per load, on each reload).

import t from 'tap';
import { formatIssue } from '../../src/config/issues.js';
import { parseYamlSource } from '../../src/config/yaml-source.js';

const TOO_DEEP = 'YAML syntax: [ ] and { } nest more than 64 deep here; a config needs a few levels';

/** The issues of `text` as `meshcar check` prints them, and the CPU the reading took. */
function check(text: string): { lines: string[]; ms: number } {
  const start = process.cpuUsage();
  const lines = parseYamlSource('c.yaml', text).issues.map(formatIssue);
  const used = process.cpuUsage(start);
  return { lines, ms: (used.user + used.system) / 1000 };
}

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

t.test('a quote inside a plain value hides no nesting: refused at once, where it goes too deep', async (t) => {
  check(`a: [${deep(70)}]\n`); // the reader compiled first
  // the reviewer's file: 600 KB, 300,000 deep behind a'b
  const bypass = check(`service: orders\nextra: [a'b, ${deep(300_000)}]\n`);
  // the 64th [ of the run is the 65th level: column 13 + 64
  t.same(bypass.lines, [`c.yaml:2:77: ${TOO_DEEP}`]);
  t.ok(bypass.ms < 250, `refused in ${bypass.ms.toFixed(0)} ms of CPU`);
  const cases: Record<string, [text: string, at: string]> = {
    '{a\'b: {a: ...': [`x: {a'b: ${'{a: '.repeat(1000)}1${'}'.repeat(1001)}\n`, '1:262'],
    "it's, then a list": [`x: [it's, ${deep(1000)}]\n`, '1:74'],
    'a plain value continued on the next line, starting with a quote': [`x: [a\n  'b, ${deep(1000)}]\n`, '2:70'],
    // a quoted value spans lines: the ] inside it close nothing
    'closers inside a quoted value of two lines': [`x: [ "a\n  ]]]]", ${deep(1000)}]\n`, '2:73'],
    'a quote right after a quoted value': [`x: ["a"'b', ${deep(1000)}]\n`, '1:76'],
    '# inside a plain value is no comment': [`x: [a#b, ${deep(1000)}]\n`, '1:73'],
  };
  for (const [name, [text, at]] of Object.entries(cases)) {
    const { lines, ms } = check(text);
    t.same(lines, [`c.yaml:${at}: ${TOO_DEEP}`], name);
    t.ok(ms < 250, `${name}: ${ms.toFixed(0)} ms of CPU`);
  }
});

t.test('keys nested on one line, in [ ] or { } or in block style, are refused at once too', async (t) => {
  const INLINE = "YAML syntax: lists and maps nest too deep here: more than 64 - ? : indicators follow the line's content (a: b: c: ... opens a level each); a config needs a few levels";
  const KEYS = 'YAML syntax: [ ] and { } and the keys in them (a: b: c: ...) nest more than 64 deep here; a config needs a few levels';
  const cases: Record<string, [text: string, line: string]> = {
    // 6 KB: the parser's stack overflowed (a reload said only "Maximum call stack size exceeded")
    'k: k: k: ...': [`x:\n  ${'k: '.repeat(2000)}a\n`, `2:196: ${INLINE}`],
    '? k: ? k: ...': [`x:\n  ${'? k: '.repeat(2000)}a\n`, `2:166: ${INLINE}`],
    // no nesting, but two syntax errors per item
    '- &a - &a ...': [`x:\n  ${'- &a '.repeat(10_000)}a\n`, `2:328: ${INLINE}`],
    '[a: a: a: ...]': [`x: [${'a: '.repeat(5000)}b]\n`, `1:195: ${KEYS}`],
    '{a: a: a: ...}': [`x: {${'a: '.repeat(5000)}b}\n`, `1:198: ${KEYS}`],
    'keys, then [, again and again': [`x: ${`[${'a: '.repeat(40)}`.repeat(40)}\n`, `1:193: ${KEYS}`],
  };
  for (const [name, [text, line]] of Object.entries(cases)) {
    const { lines, ms } = check(text);
    t.same(lines, [`c.yaml:${line}`], name);
    t.ok(ms < 250, `${name}: ${ms.toFixed(0)} ms of CPU`);
  }
  // JSON is YAML: a map's own key is no extra level, and a comma ends an entry's keys
  const json = (depth: number) => `${JSON.stringify(Array.from({ length: depth }).reduce((inner) => ({ k: inner, n: [1, { m: 2 }] }), 1)).replace(/:/g, ': ')}\n`;
  t.same(check(json(60)).lines, []);
  t.same(check(`list: [${Array.from({ length: 500 }, (_, i) => `{k${i}: ${i}, v: [a, b]}`).join(', ')}]\n`).lines, [], '500 entries of one line');
});

t.test("a config with it's and a'b values, brackets in quotes and comments, still loads", async (t) => {
  const text = [
    "names: [it's, a'b, \"c'd\", 'e''f', g\"h]",
    "plain: it's a'b",
    `quoted: "${'['.repeat(100)}"`,
    `single: '${'{'.repeat(100)}'`,
    `# ${'['.repeat(100)}`,
    `list: [x, "${']'.repeat(100)}", ${deep(60)}]  # it's 61 deep`,
    'routes: ["/charges/{id}", "/a/{b}/c"]',
    'route: /a/{b}/c',
    '',
  ].join('\n');
  const source = parseYamlSource('c.yaml', text);
  t.same(source.issues, []);
  const root = source.root?.map();
  t.same(root?.get('names').list()?.map((v) => v.string()), ["it's", "a'b", "c'd", "e'f", 'g"h']);
  t.equal(root?.get('plain').string(), "it's a'b");
  t.equal(root?.get('list').list()?.length, 3);
});
