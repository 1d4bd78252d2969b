// The top-level `http2.codec` key (issue 9): default meshcar (the own codec, since every test
// passes with it), node still accepted, anything else rejected with file:line:column and key
// path, and a change on reload needs a restart.

import t from 'tap';
import { BASE_CONFIG as BASE, configIssues as issuesOf, loadConfigText as load } from '../helpers/config-text.js';
import { LIVE_RELOAD_KEYS, planReload } from '../../src/config/reload-plan.js';

t.test('http2.codec defaults to meshcar and accepts node', async (t) => {
  t.same((await load(t, BASE)).http2, { codec: 'meshcar' }, 'absent: the own codec');
  t.same((await load(t, `${BASE}http2: {}\n`)).http2, { codec: 'meshcar' }, 'an empty map keeps the default');
  t.same((await load(t, `${BASE}http2:\n  codec: meshcar\n`)).http2, { codec: 'meshcar' });
  t.same((await load(t, `${BASE}http2:\n  codec: node\n`)).http2, { codec: 'node' });
});

t.test('unknown codecs and keys are rejected with their place', async (t) => {
  t.same(await issuesOf(t, `${BASE}http2:\n  codec: nghttp2\n`), ['c.yaml:9:3: http2.codec: "nghttp2" is not an HTTP/2 codec; use one of meshcar, node']);
  t.same(await issuesOf(t, `${BASE}http2:\n  codec: 2\n`), ['c.yaml:9:3: http2.codec: expected an HTTP/2 codec (meshcar or node), got a number']);
  t.match((await issuesOf(t, `${BASE}http2:\n  codecs: meshcar\n`))[0], /^c\.yaml:9:3: http2\.codecs: unknown key/);
  t.same(await issuesOf(t, `${BASE}http2: meshcar\n`), ['c.yaml:8:1: http2: expected a map, got a string']);
});

t.test('a codec change on reload needs a restart', async (t) => {
  t.notOk((LIVE_RELOAD_KEYS as readonly string[]).includes('http2.codec'));
  const plan = planReload(await load(t, BASE), await load(t, `${BASE}http2:\n  codec: node\n`));
  t.same(plan.restartRequired, ['http2.codec']);
  t.same(plan.applied, []);
  t.equal(plan.effective.http2.codec, 'meshcar', 'the running codec (the default) stays until the restart');
});
