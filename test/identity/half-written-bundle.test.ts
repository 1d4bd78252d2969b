// An `identity.files` bundle read while it is being rewritten in place, cut in the middle of a
// root's PEM block, is refused (the old identity kept, one warning), not loaded as a bundle one
// root short: that cut the open connections of the callers under that root and refused new
// ones until the write was done. Real `meshcar run`, two meshcar CAs, a real HTTP/2 caller.

import t from 'tap';
import http2 from 'node:http2';
import { open } from 'node:fs/promises';
import { startTwoRootFilesSidecar } from '../helpers/two-root-files.js';
import { hasUnterminatedPemBlock } from '../../src/pki/pem.js';

t.test('hasUnterminatedPemBlock', async (t) => {
  const block = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  t.notOk(hasUnterminatedPemBlock(block + block));
  t.notOk(hasUnterminatedPemBlock(''));
  t.ok(hasUnterminatedPemBlock(block + '-----BEGIN CERTIFICATE-----\nAA'), 'a block cut short');
  t.ok(hasUnterminatedPemBlock('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n'), 'an END of another label');
});

t.test('a bundle cut in the middle of a root is refused; the callers under that root keep their connections', async (t) => {
  const { own, caller, files, sidecar } = await startTwoRootFilesSidecar(t, t.testdir());
  const full = own.bundle + caller.bundle;
  const proc = sidecar.process!;
  const session = http2.connect(`https://127.0.0.1:${sidecar.inboundPort}`, { cert: caller.cert, key: caller.key, ca: own.bundle, checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      req.on('error', reject);
      req.on('response', (head) => {
        req.resume();
        req.on('end', () => resolve(Number(head[':status'])));
      });
      req.end();
    });
  t.equal(await get(), 404, 'the caller under root 2 is answered');

  // rewritten in place, paused in the middle of root 2's block
  const cut = own.bundle.length + Math.floor(caller.bundle.length / 2);
  const file = await open(files.bundle, 'w');
  await file.write(full.slice(0, cut));
  await file.sync();
  for (let i = 0; i < 200 && !proc.lines.some((line) => /refused the new identity files/.test(String(line.msg))); i++) await new Promise((r) => setTimeout(r, 50));
  const refusal = proc.lines.find((line) => /refused the new identity files/.test(String(line.msg)));
  t.match(refusal?.msg, /the trust bundle has a PEM block that never ends/, 'the cut file is refused, saying why');
  t.equal(refusal?.level, 40, 'one warning');
  t.equal(await get(), 404, 'the open connection still answers');
  t.notOk(proc.lines.some((line) => /no longer holds/.test(String(line.msg))), 'the trust never narrowed');
  await file.write(full.slice(cut));
  await file.close();
  t.equal(await get(), 404, 'and after the write');
});
