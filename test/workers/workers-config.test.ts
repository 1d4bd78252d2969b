// The top-level `workers` key (issue 10, "Scale up"): default 1, a positive integer or `auto`
// accepted, anything else rejected with file:line:column, the key and what is allowed; shown
// in /config's view; a change on reload needs a restart.

import t from 'tap';
import { BASE_CONFIG as BASE, configIssues as issuesOf, loadConfigText as load } from '../helpers/config-text.js';
import { LIVE_RELOAD_KEYS, planReload } from '../../src/config/reload-plan.js';
import { effectiveYamlView } from '../../src/config/effective-yaml.js';

t.test('workers defaults to 1 and accepts a positive integer or auto', async (t) => {
  t.equal((await load(t, BASE)).workers, 1, 'absent: one process, today\'s path');
  t.equal((await load(t, `${BASE}workers: 4\n`)).workers, 4);
  t.equal((await load(t, `${BASE}workers: auto\n`)).workers, 'auto');
  t.equal(effectiveYamlView(await load(t, `${BASE}workers: auto\n`)).workers, 'auto', '/config shows it as written');
  t.equal(effectiveYamlView(await load(t, BASE)).workers, 1, '/config shows the default');
});

t.test('anything else is refused, naming the key and what is allowed', async (t) => {
  const allowed = 'must be a positive integer or "auto"';
  t.same(await issuesOf(t, `${BASE}workers: 0\n`), [`c.yaml:8:1: workers: ${allowed}, not 0: how many processes carry traffic (auto: one per core)`]);
  t.same(await issuesOf(t, `${BASE}workers: "many"\n`), [`c.yaml:8:1: workers: ${allowed}, not "many": how many processes carry traffic (auto: one per core)`]);
  for (const bad of ['-2', '1.5', '[2]', 'Auto', 'true']) {
    t.match((await issuesOf(t, `${BASE}workers: ${bad}\n`))[0], `workers: ${allowed}`, `workers: ${bad}`);
  }
});

t.test('a change of workers on reload needs a restart', async (t) => {
  t.notOk((LIVE_RELOAD_KEYS as readonly string[]).includes('workers'));
  const plan = planReload(await load(t, BASE), await load(t, `${BASE}workers: 2\n`));
  t.same(plan.restartRequired, ['workers']);
  t.same(plan.applied, []);
  t.equal(plan.effective.workers, 1, 'the running count stays until the restart');
});
