// The admin port's JSON error answers write C1 controls and bidi overrides as \uXXXX, as its
// other JSON answers do (README, logging in "Metrics"): an unknown ?format echoed in a 400 and
// a config_invalid message quoting log.level reached curl's terminal raw (U+009B is CSI, U+202E
// turns the rest of the line around). A real admin server in this process, a real HTTP client.

import t from 'tap';
import http from 'node:http';
import { pino } from 'pino';
import { MeshcarError } from '../../src/errors.js';
import { startAdminServer } from '../../src/admin/server.js';
import { bareAdminState } from '../helpers/admin-state.js';

const HOSTILE = '\u009b[2J\u202eo';

const state = bareAdminState({
  reload: async () => {
    throw new MeshcarError('config_invalid', `log.level: "${HOSTILE}" is not a level`);
  },
  views: {
    '/endpoints': (query) => {
      throw new MeshcarError('bad_request', `unknown format ${JSON.stringify(query.get('format'))}`);
    },
  },
});

function ask(port: number, method: string, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('error answers carry U+009B and U+202E as \\u escapes, and the same JSON value', async (t) => {
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }));
  t.teardown(() => admin.close());
  for (const [method, path, status] of [
    ['GET', '/endpoints?format=%C2%9B%E2%80%AE', 400],
    ['POST', '/reload', 400],
  ] as const) {
    const { status: got, body } = await ask(admin.port, method, path);
    t.equal(got, status, `${method} ${path}: ${status}`);
    t.notOk(body.includes(Buffer.from('\u009b')) || body.includes(Buffer.from('\u202e')), `${method} ${path}: no raw U+009B or U+202E in ${body.toString('latin1')}`);
    t.match(body.toString(), /\\u009b/, 'written as \\u009b');
    t.match(body.toString(), /\\u202e/, 'and \\u202e');
    t.match((JSON.parse(body.toString()) as { message: string }).message, /\u009b.*\u202e/, 'which JSON reads back as the characters');
  }
});
