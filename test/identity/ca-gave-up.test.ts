// A first start whose CA never answers ends, after its retries, with one error that says it
// waited and what to do (start the CA or correct identity.ca.url, then the sidecar again), not
// with the last connection error alone.

import t from 'tap';
import pino from 'pino';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { freePort } from '../helpers/process.js';
import { unsignedToken } from '../helpers/ca.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';

t.test('the CA never answers: the start gives up saying what to do', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.token': `${unsignedToken()}\n` });
  // a port nothing listens on (freed again at once): every dial is refused
  const port = await freePort();
  await t.rejects(
    obtainIdentity({
      spiffeId: 'spiffe://mesh.local/svc/orders',
      trustDomain: 'mesh.local',
      dir: join(dir, 'identity'),
      ca: { url: `https://127.0.0.1:${port}`, bundlePath: join(dir, 'bundle.pem'), tokenPath: join(dir, 'orders.token') },
      startupTimeoutMs: 1500,
      backoff: { baseMs: 50, capMs: 200 },
      logger: pino({ level: 'silent' }),
    }),
    {
      code: 'ca_unreachable',
      message: new RegExp(`the CA at https://127\\.0\\.0\\.1:${port} is unreachable: .*ECONNREFUSED.*; gave up after [\\d.]+ m?s of retries: start the CA \\(meshcar ca serve --config FILE\\) or correct identity\\.ca\\.url, then start the sidecar again`),
    },
  );
});
