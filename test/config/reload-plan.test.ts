// What a reload's answer lists as changed (`restartRequired`, `applied`): the keys as the YAML
// names them, never a field meshcar derives. A reload from identity.files with `ttl` set (a key
// files mode does not use, kept as `identity.unusedKeys` for its warning) to identity.ca listed
// `identity.unusedKeys`, which no YAML has (the bad-input review).

import t from 'tap';
import { changedPaths } from '../../src/config/reload-plan.js';
import { loadConfigText } from '../helpers/config-text.js';

const FILES_WITH_TTL = `service: orders
trustDomain: mesh.local
identity:
  files: {cert: c.pem, key: k.pem, bundle: b.pem}
  ttl: 2h
inbound:
  listen: 127.0.0.1:15443
  app: http://127.0.0.1:8080
`;

const CA = `service: orders
trustDomain: mesh.local
identity:
  ca: {url: "https://127.0.0.1:8443", bundle: b.pem, token: t.token}
  dir: ids
  ttl: 2h
inbound:
  listen: 127.0.0.1:15443
  app: http://127.0.0.1:8080
`;

t.test('files (ttl set, unused) to ca: the changed keys are YAML keys only', async (t) => {
  const files = await loadConfigText(t, FILES_WITH_TTL);
  const ca = await loadConfigText(t, CA);
  t.same(files.identity.source === 'files' ? files.identity.unusedKeys : undefined, ['ttl'], 'the unused key is kept for its warning');
  const changed = changedPaths(files, ca);
  t.notOk(changed.includes('identity.unusedKeys'), `no derived field among ${changed.join(', ')}`);
  t.ok(changed.includes('identity.ca') && changed.includes('identity.files'), 'the source keys are named');
});
