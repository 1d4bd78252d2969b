// The "did you mean" of an unknown key: the same suggestions as a full edit distance, at a cost
// that does not grow with the key's length, so a file of thousands of long unknown keys is
// refused (by `meshcar check`, or by a reload with the event loop held) at once.

import t from 'tap';
import { suggestKey } from '../../src/config/key-suggestion.js';
import { parseYamlSource } from '../../src/config/yaml-source.js';

const ALLOWED = ['listen', 'app', 'timeout', 'authorize', 'rateLimit', 'idleTimeout', 'tunnelIdleTimeout'];

t.test('within two edits, case aside, the nearest and then the first', async (t) => {
  t.equal(suggestKey('timeuot', ALLOWED), 'timeout', 'a swap is two edits');
  t.equal(suggestKey('TimeOut', ALLOWED), 'timeout');
  t.equal(suggestKey('idletimeout', ALLOWED), 'idleTimeout');
  t.equal(suggestKey('ratelimits', ALLOWED), 'rateLimit');
  t.equal(suggestKey('ap', ALLOWED), 'app');
  t.equal(suggestKey('lisen', [...ALLOWED, 'listens']), 'listen', 'one edit beats two');
  t.equal(suggestKey('xpp', ['app', 'opp']), 'app', 'a tie goes to the first');
  t.equal(suggestKey('tmeuot', ALLOWED), undefined, 'three edits is not a typo');
  t.equal(suggestKey('', ALLOWED), undefined);
  t.equal(suggestKey('a', ['app']), 'app');
});

// the bad-input review: snake case with three separators or more was out of reach (each `_` an edit)
t.test('snake case and kebab case of a key are that key', async (t) => {
  const keys = ['maxHeaderListSize', 'maxConnectionsPerCaller', 'tunnelIdleTimeout'];
  t.equal(suggestKey('max_header_list_size', keys), 'maxHeaderListSize');
  t.equal(suggestKey('max-connections-per-caller', keys), 'maxConnectionsPerCaller');
  t.equal(suggestKey('TUNNEL_IDLE_TIMEOUT', keys), 'tunnelIdleTimeout');
  t.equal(suggestKey('max_body_size', keys), undefined, 'another word is still no typo');
});

t.test('2,000 unknown keys of 1,000 characters: refused at once, each with its line', async (t) => {
  // a full edit distance with each allowed key cost 0.7 s per 1,000 such keys (1.5 s for 35,000
  // short ones: a 1 MiB file), spent on every reload with the event loop held
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}${'x'.repeat(1000)}`);
  const source = parseYamlSource('c.yaml', `service: orders\n${keys.map((key) => `${key}: 1`).join('\n')}\n`);
  const started = performance.now();
  source.root?.map(['service', 'trustDomain', 'identity', 'inbound', 'outbound', 'admin', 'log', 'metrics', 'drainTimeout', 'http2', 'http1', 'workers']);
  const took = performance.now() - started;
  t.equal(source.issues.length, 2000);
  t.match(source.issues[1999], { line: 2001, column: 1, message: /^unknown key; allowed here: service, / });
  t.ok(took < 400, `checked in ${Math.round(took)} ms`);
});

// more than two edits away, but the same word's stem: no "did you mean" was given (review)
t.test('a key sharing its stem with an allowed one is suggested it', async (t) => {
  t.equal(suggestKey('retry', ['endpoints', 'retries', 'timeout']), 'retries');
  t.equal(suggestKey('authorization', ['listen', 'authorize', 'routes']), 'authorize');
  t.equal(suggestKey('logging', ['service', 'log', 'metrics']), 'log');
  t.equal(suggestKey('re', ['retries']), undefined, 'under three letters: no stem');
  t.equal(suggestKey('frobnicate', ['retries', 'log', 'authorize']), undefined, 'nothing shared: nothing suggested');
  t.equal(suggestKey('maxApp', ['maxAppConnections', 'maxAppWaiting', 'maxConcurrentStreams']), undefined, 'two keys share the stem as far: no guess');
});
