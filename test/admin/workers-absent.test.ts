// GET /workers on a sidecar running as one process: a 404 that says the view exists with
// workers: 2 or more, not "no admin endpoint" as for a mistyped path (rvnewuser's leftover).

import t from 'tap';
import { makePki } from '../helpers/pki.js';
import { startFilesSidecar } from '../helpers/files-sidecar.js';

t.test('GET /workers with one process says why it is not there', async (t) => {
  const pki = await makePki('mesh.local');
  const fx = await startFilesSidecar(pki, t.testdir());
  t.teardown(() => fx.close());
  const answer = JSON.parse((await fx.adminGet('/workers')).toString('utf8')) as { error?: string; message?: string };
  t.equal(answer.error, 'not_found');
  t.match(answer.message, /^\/workers: this sidecar runs as one process; the view exists with workers: 2 or more/);
  const typo = JSON.parse((await fx.adminGet('/worker')).toString('utf8')) as { message?: string };
  t.match(typo.message, /^no admin endpoint \/worker; try /, 'a mistyped path is told as before');
  t.notMatch(typo.message, /\/workers/, 'and /workers is not offered where it does not exist');
});
