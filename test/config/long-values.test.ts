// A config value far longer than any valid one (a 900 KB service name, a number of 500,000
// digits, a path of 500,000 bytes) is reported in a line of a few hundred characters: the issue
// quotes its first 200 and says how long it was, as `meshcar check`, a reload's JSON answer and
// its log line carry it. Short values are quoted whole, as before.

import t from 'tap';
import { BASE_CONFIG as BASE, configIssues as issuesOf } from '../helpers/config-text.js';
import { clipQuotedValues } from '../../src/config/quoted-values.js';

t.test('a long string, number, key or path: each issue stays a short line', async (t) => {
  const long = 'a'.repeat(900_000);
  const cases: Array<[string, RegExp]> = [
    [BASE.replace('service: orders', `service: ${long}`), /^c\.yaml:1:1: service: "a{200}… \(900000 characters\)" is not a service name: /],
    [`${BASE}workers: ${'9'.repeat(500_000)}\n`, /^c\.yaml:8:1: workers: must be a positive integer or "auto", not 9{200}… \(500000 characters\): /],
    [`${BASE}? ${'k'.repeat(5000)}\n: 1\n`, /^c\.yaml:8:3: k{200}… \(5000 characters\): unknown key; allowed here: /],
    [BASE.replace('cert: c.pem', `cert: ${'p'.repeat(500_000)}`), /^c\.yaml:4:11: identity\.files\.cert: the path is 500000 bytes long; a path is at most 4095$/],
  ];
  for (const [text, expected] of cases) {
    const issues = await issuesOf(t, text);
    t.equal(issues.length, 1, issues.join('\n').slice(0, 500));
    t.match(issues[0], expected);
    t.ok((issues[0] as string).length < 600, `${(issues[0] as string).length} characters`);
  }
  // a valid value's issues are quoted whole
  t.same(await issuesOf(t, BASE.replace('service: orders', 'service: "ord ers"')), ['c.yaml:1:1: service: "ord ers" is not a service name: use letters, digits, dots, dashes and underscores']);
});

t.test('quoted values are cut whole characters at a time, escapes and all, and stay valid JSON', async (t) => {
  const message = `x ${JSON.stringify('é"\\'.repeat(100))} and ${JSON.stringify('short')}`;
  const cut = clipQuotedValues(message);
  const quoted = /^x ("(?:[^"\\]|\\.)*") and "short"$/.exec(cut);
  t.ok(quoted, cut);
  t.equal(JSON.parse(quoted![1]!), `${'é"\\'.repeat(100).slice(0, 200)}… (300 characters)`);
  t.equal(clipQuotedValues('short "message"'), 'short "message"');
});
