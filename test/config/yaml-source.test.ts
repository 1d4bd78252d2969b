import t from 'tap';
import { join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, formatIssue, formatIssues, type ConfigIssue } from '../../src/config/issues.js';
import { parseYamlSource, readYamlSource } from '../../src/config/yaml-source.js';
import { childPath } from '../../src/config/yaml-value.js';
import { BASE_CONFIG as BASE, configIssues } from '../helpers/config-text.js';

const lines = (issues: ConfigIssue[]): string[] => issues.map(formatIssue);

t.test('key paths', async (t) => {
  t.equal(childPath('', 'inbound'), 'inbound');
  t.equal(childPath('outbound.upstreams', 'payments'), 'outbound.upstreams.payments');
  t.equal(childPath('outbound.upstreams', 'payments.prod.svc'), 'outbound.upstreams["payments.prod.svc"]');
  t.equal(childPath('inbound.authorize', 0), 'inbound.authorize[0]');
});

t.test('YAML syntax errors carry line and column, and stop the check', async (t) => {
  const source = parseYamlSource('c.yaml', 'a: 1\nb: [1, 2\nc: 3\n');
  t.equal(source.root, undefined);
  t.same(lines(source.issues), ['c.yaml:3:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]']);
});

t.test('a line of tens of thousands of syntax errors is worded in time linear in it', async (t) => {
  // every error on the same 80 KB line, whose hints (invisible characters, a bare IPv6
  // address, braces) were each read again per error: `- &a - &a ...` (now refused by the
  // nesting scan) took 12 s of CPU for 125 KB
  const text = `x: "a" ${'"b" '.repeat(20_000)}\n`;
  const cpuMs = (work: () => unknown): number => {
    const start = process.cpuUsage();
    work();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000;
  };
  // as yaml-source.ts parses
  const parse = () => parseDocument(text, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false });
  parse(); // the parser compiled first
  let issues: ConfigIssue[] = [];
  const read = cpuMs(() => (issues = parseYamlSource('c.yaml', text).issues));
  const parsed = cpuMs(parse);
  t.equal(issues.length, 20_000);
  t.same(lines(issues.slice(0, 2)), ['c.yaml:1:8: YAML syntax: Unexpected double-quoted-scalar at node end', 'c.yaml:1:12: YAML syntax: Unexpected double-quoted-scalar at node end']);
  t.ok(read < 2 * parsed + 150, `${read.toFixed(0)} ms of CPU, the parser's own ${parsed.toFixed(0)} ms and little more`);
});

t.test('duplicate keys and several documents are syntax errors', async (t) => {
  t.same(lines(parseYamlSource('c.yaml', 'a: 1\na: 2\n').issues), ['c.yaml:2:1: YAML syntax: Map keys must be unique: "a" is given a second time here (first on line 1); keep one']);
  t.match(lines(parseYamlSource('c.yaml', 'a: 1\n---\nb: 2\n').issues), [/^c\.yaml:2:1: YAML syntax: the file holds more than one YAML document/]);
});

t.test('duplicate keys: each repeat at its place, in every map, by value; found in one pass', async (t) => {
  const text = 'a: 1\ninbound:\n  x: 1\n  "x": 2\nlist:\n  - k: 1\n    k: 2\n  - k: 3\n1: one\n"1": quoted one\na: 3\n';
  t.same(lines(parseYamlSource('c.yaml', text).issues), [
    'c.yaml:4:3: YAML syntax: Map keys must be unique: "x" is given a second time here (first on line 3); keep one',
    'c.yaml:7:5: YAML syntax: Map keys must be unique: "k" is given a second time here (first on line 6); keep one',
    'c.yaml:11:1: YAML syntax: Map keys must be unique: "a" is given a second time here (first on line 1); keep one',
  ], '"x" repeats x; k repeats within its own map only; 1 and "1" are two keys');
  t.equal(parseYamlSource('c.yaml', text).root, undefined, 'and the check stops there');
  // 40,000 keys in one map: the parser's own check compared each with every earlier one (~28 s)
  const many = `${Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n')}\nk7: 2\n`;
  const started = Date.now();
  const issues = lines(parseYamlSource('c.yaml', many).issues);
  const took = Date.now() - started;
  t.same(issues, ['c.yaml:40001:1: YAML syntax: Map keys must be unique: "k7" is given a second time here (first on line 8); keep one']);
  t.ok(took < 5_000, `40,001 keys checked in ${took} ms`);
});

t.test('braces in a bare list item get a hint to quote', async (t) => {
  const issues = lines(parseYamlSource('c.yaml', 'routes: [/charges/{id}]\n').issues);
  t.match(issues, [/^c\.yaml:1:\d+: YAML syntax: .*quote values holding \{ \} \[ \] or commas/]);
});

t.test('empty and unreadable files are one whole-file issue', async (t) => {
  t.same(lines(parseYamlSource('c.yaml', '# nothing here\n').issues), ['c.yaml: the config file is empty']);
  const dir = t.testdir({ sub: {} });
  const missing = await readYamlSource(join(dir, 'nope.yaml'));
  t.same(missing.issues, [{ file: join(dir, 'nope.yaml'), line: 0, column: 0, path: '', message: 'cannot read the config file: no such file' }]);
  t.match(lines((await readYamlSource(join(dir, 'sub'))).issues), [/cannot read the config file: it is a directory$/]);
});

t.test('the reader collects every issue with its path and position', async (t) => {
  const source = parseYamlSource('c.yaml', ['top:', '  name: 5', '  colour: red', '  list: [a, [b]]', 'other: x'].join('\n'));
  const top = source.root?.map(['top', 'other']);
  const inner = top?.get('top').map(['name', 'list', 'size', 'color']);
  t.equal(inner?.required('name', (v) => v.string()), undefined);
  t.equal(inner?.required('size', (v) => v.number()), undefined);
  t.equal(inner?.get('list').listOf((v) => v.string()), undefined);
  t.equal(inner?.optional('color', (v) => v.string(), 'blue'), 'blue');
  t.same(lines(source.issues), [
    'c.yaml:3:3: top.colour: unknown key (did you mean color?); allowed here: name, list, size, color',
    'c.yaml:2:3: top.name: expected a string, got a number',
    'c.yaml:1:1: top.size: required key is missing',
    'c.yaml:4:13: top.list[1]: expected a string, got a list',
  ]);
});

t.test('aliases are followed and null values are "nothing"', async (t) => {
  const source = parseYamlSource('c.yaml', 'a: &x hello\nb: *x\nc:\n');
  const root = source.root?.map();
  t.equal(root?.get('b').string(), 'hello');
  t.equal(root?.get('c').kind, 'nothing');
  t.equal(root?.get('c').string(), undefined);
  t.same(lines(source.issues), ['c.yaml:3:1: c: expected a string, got nothing']);
});

t.test('ConfigError carries the issues and prints one per line', async (t) => {
  const issues: ConfigIssue[] = [
    { file: 'config/orders.yaml', line: 12, column: 3, path: 'inbound.timeout', message: '"15x" is not a duration (write 250ms, 2s, 5m, 24h or 7d)' },
    { file: 'config/orders.yaml', line: 0, column: 0, path: '', message: 'whole file' },
  ];
  const err = new ConfigError(issues);
  t.equal(err.code, 'config_invalid');
  t.equal(err.message, 'config/orders.yaml:12:3: inbound.timeout: "15x" is not a duration (write 250ms, 2s, 5m, 24h or 7d)\nconfig/orders.yaml: whole file');
  t.equal(err.message, formatIssues(issues));
  t.same(err.issues, issues);
  t.ok(Object.isFrozen(err.issues));
});

t.test('lists and maps nested hundreds deep in block style: one line that says so, before the parser overflows its stack', async (t) => {
  // `- - - ...` on one line, `? ? ...`, `-<tab>-<tab>...`, and keys indented one more each line:
  // the parser overflows its stack; followed by a line less indented, outside its own catch
  // (check: a stack trace, exit 70; a reload: "Maximum call stack size exceeded", no line)
  const texts = {
    dashes: `service: orders\nx:\n  ${'- '.repeat(50_000)}a\n`,
    'dashes, then a line less indented': `service: orders\nx:\n  ${'- '.repeat(3000)}a\nworkers: 2\n`,
    keys: `service: orders\nx:\n  ${'? '.repeat(50_000)}a\n`,
    tabs: `service: orders\nx:\n  ${'-\t'.repeat(3000)}a\nworkers: 2\n`,
    indented: `x:\n${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}\nworkers: 2\n`,
  };
  const started = Date.now();
  for (const [name, text] of Object.entries(texts)) {
    const issues = lines(parseYamlSource('c.yaml', text).issues);
    t.same(issues, [`c.yaml:${name === 'indented' ? '258:258' : '3:258'}: YAML syntax: lists and maps nest too deep here: the line's content starts more than 256 columns in (spaces and - ? : indicators); a config needs a few levels`], name);
  }
  t.ok(Date.now() - started < 2000, 'at once');
  // 120 levels, as deep as the bound lets the compact form go, parse
  t.same(parseYamlSource('c.yaml', `x:\n  ${'- '.repeat(120)}a\nworkers: 2\n`).issues, []);
});

t.test('an IPv6 address with its port, unquoted, gets a hint to quote it', async (t) => {
  // `[` starts a YAML list: the parser's "Unexpected scalar at node end" alone does not say why
  for (const address of ['[::]:15443', '[::1]:8080', '[::ffff:127.0.0.1]:80', '[fe80::1%eth0]:80']) {
    for (const text of [`inbound:\n  listen: ${address}\n`, `endpoints:\n  - ${address}\n`]) {
      t.match(lines(parseYamlSource('c.yaml', text).issues), [/^c\.yaml:2:\d+: YAML syntax: .* \(quote an IPv6 address with its port: "\[::1\]:8080"\)$/], text);
    }
  }
  t.same(parseYamlSource('c.yaml', 'inbound:\n  listen: "[::]:15443"\n').issues, [], 'quoted, it is a string');
  t.notMatch(lines(parseYamlSource('c.yaml', 'a: [1, 2\nb: 3\n').issues), [/IPv6/], 'other list mistakes get no such hint');
});

t.test('an IPv6 address with its port, unquoted inside a [ ] list, is named and the quoted form given', async (t) => {
  // inside a flow list the parser finds no syntax error: `[::1]:8443` is a map from [::1] to 8443
  const issues = await configIssues(t, `${BASE}outbound:\n  listen: 127.0.0.1:15001\n  upstreams:\n    payments:\n      identity: spiffe://mesh.local/svc/payments\n      endpoints: [[::1]:8443, 127.0.0.1:8443]\n`);
  t.match(issues, [/endpoints\[0\]: expected an endpoint \(host:port or dns:NAME:PORT\), got a map \(YAML reads \[::1\]:8443 unquoted as a map: quote a bracketed IPv6 address, e\.g\. "\[::1\]:8443"\)$/]);
  t.equal(issues.length, 1, 'one issue');
  t.match(await configIssues(t, `${BASE}outbound:\n  listen: 127.0.0.1:15001\n  upstreams:\n    payments:\n      identity: spiffe://mesh.local/svc/payments\n      endpoints: [{a: 1}]\n`), [/got a map$/], 'another map: no hint');
});

t.test('lines ending in CR alone: one line that says so, not a flood on line 1', async (t) => {
  const text = 'service: orders\ntrustDomain: mesh.local\ninbound:\n  listen: 127.0.0.1:15443\n  app: http://127.0.0.1:8080\n';
  const expected = /^c\.yaml:1:16: YAML syntax: this line ends in a carriage return alone \(CR, as classic Mac OS wrote\), .*save the file with LF \(or CRLF\) line ends$/;
  t.match(lines(parseYamlSource('c.yaml', text.replace(/\n/g, '\r')).issues), [expected], 'every line');
  t.match(lines(parseYamlSource('c.yaml', `# settings\r${text.replace(/\n/g, '\r')}`).issues), [/^c\.yaml:1:11: YAML syntax: this line ends in a carriage return alone/], 'a file that read as one comment');
  t.same(parseYamlSource('c.yaml', text.replace(/\n/g, '\r\n')).issues, [], 'CRLF is fine');
  t.same(parseYamlSource('c.yaml', `${text}# a stray \r in a comment\n`).issues, [], 'a stray CR the parser reads past is left alone');
});

t.test('keys YAML tells apart but a name does not (8443 and "8443"): the later is an issue, not a silent replacement', async (t) => {
  const source = parseYamlSource('c.yaml', 'upstreams:\n  8443: first\n  "8443": second\n  true: x\n  "true": y\n  1.0: z\n  "1.0": w\n  other: v\n');
  t.same(source.issues, [], 'YAML itself has no repeat here');
  const upstreams = source.root?.map()?.get('upstreams').map();
  t.same(lines(source.issues), [
    'c.yaml:3:3: upstreams["8443"]: the name 8443 is given twice in this map (once quoted, once not: YAML reads two keys, the config one name); give it once',
    'c.yaml:5:3: upstreams.true: the name true is given twice in this map (once quoted, once not: YAML reads two keys, the config one name); give it once',
    'c.yaml:7:3: upstreams["1.0"]: the name 1.0 is given twice in this map (once quoted, once not: YAML reads two keys, the config one name); give it once',
  ]);
  t.same(upstreams?.entries().map(([key, value]) => [key, value.string()]), [['8443', 'first'], ['true', 'x'], ['1.0', 'z'], ['other', 'v']], 'the first of each is kept');
});

t.test('characters a reader cannot see are named: a no-break space in a syntax error, a zero-width or foreign letter in an unknown key', async (t) => {
  // pasted from a web page: `timeout:<NBSP>15s` is no key to YAML
  t.same(lines(parseYamlSource('c.yaml', 'inbound:\n  listen: 127.0.0.1:1\n  timeout:\u00a015s\n').issues), [
    'c.yaml:3:3: YAML syntax: Implicit map keys need to be followed by map values (the line holds U+00A0, which YAML does not read as a space: type a plain space, or remove it)',
  ]);
  const source = parseYamlSource('c.yaml', 'servic\u200be: orders\nserv\u0456ce: orders\n');
  source.root?.map(['service']);
  t.same(lines(source.issues), [
    'c.yaml:1:1: ["servic\u200be"]: unknown key (did you mean service?) (it holds U+200B: config keys are plain ASCII); allowed here: service',
    'c.yaml:2:1: ["serv\u0456ce"]: unknown key (did you mean service?) (it holds U+0456: config keys are plain ASCII); allowed here: service',
  ]);
});
