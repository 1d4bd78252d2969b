// A trust bundle that lost a root, then gets it back: callers under that root are accepted as
// soon as the bundle holds it again. Handshakes under way when a root leaves are held to the
// bundle of now for a handshake's time (10 s); that check kept the narrowed roots, so after the
// root came back its callers were refused for 10 s more. Real `meshcar run` with
// `identity.files`, the bundle replaced atomically (written aside, renamed), two meshcar CAs.

import t from 'tap';
import http2 from 'node:http2';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { startTwoRootFilesSidecar } from '../helpers/two-root-files.js';

t.test('a root back in the bundle is trusted at once, not a handshake timeout later', async (t) => {
  const dir = t.testdir();
  const { own, caller, files, sidecar } = await startTwoRootFilesSidecar(t, dir);
  const replaceBundle = async (text: string) => {
    await writeFile(join(dir, '.bundle.tmp'), text);
    await rename(join(dir, '.bundle.tmp'), files.bundle);
  };
  const proc = sidecar.process!;
  const call = () =>
    new Promise<string>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${sidecar.inboundPort}`, { cert: caller.cert, key: caller.key, ca: own.bundle, checkServerIdentity: () => undefined });
      const bound = setTimeout(() => resolve('no answer in 5 s'), 5_000);
      const done = (what: string) => {
        clearTimeout(bound);
        session.destroy();
        resolve(what);
      };
      session.on('error', (err: NodeJS.ErrnoException) => done(`error ${err.code}`));
      session.once('close', () => done('closed'));
      const req = session.request({ ':path': '/' });
      req.on('error', () => undefined);
      req.on('response', (head) => done(`HTTP ${head[':status']}`));
      req.end();
    });
  const reloads = () => proc.lines.filter((line) => line.msg === 'identity reloaded from files').length;
  const until = async (check: () => boolean, what: string) => {
    for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
    t.ok(check(), what);
  };

  t.match(await call(), /^HTTP /, 'root 2 in the bundle: its caller is answered');
  await replaceBundle(own.bundle);
  await until(() => reloads() === 1, 'the narrowed bundle is loaded');
  t.notMatch(await call(), /^HTTP /, 'root 2 gone: its caller is refused');
  // the narrowing ages past the handshake timeout (10 s): then the root comes back
  const narrowedAt = Date.now();
  await new Promise((r) => setTimeout(r, 10_500 - (Date.now() - narrowedAt)));
  await replaceBundle(own.bundle + caller.bundle);
  await until(() => reloads() === 2, 'the bundle with root 2 again is loaded');
  t.match(await call(), /^HTTP /, 'its caller is answered at once');
});
