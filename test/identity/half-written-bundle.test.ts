// An `identity.files` bundle read while it is being rewritten in place, cut in the middle of a
// root's PEM block, is refused (the old identity kept, one warning), not loaded as a bundle one
// root short: that cut the open connections of the callers under that root and refused new
// ones until the write was done. Real `meshcar run`, two meshcar CAs, a real HTTP/2 caller.

import t from 'tap';
import { open } from 'node:fs/promises';
import { callerSession, startTwoRootFilesSidecar } from '../helpers/two-root-files.js';
import { hasUnterminatedPemBlock } from '../../src/pki/pem.js';

t.test('hasUnterminatedPemBlock', async (t) => {
  const block = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  t.notOk(hasUnterminatedPemBlock(block + block));
  t.notOk(hasUnterminatedPemBlock(''));
  t.ok(hasUnterminatedPemBlock(block + '-----BEGIN CERTIFICATE-----\nAA'), 'a block cut short');
  t.ok(hasUnterminatedPemBlock('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n'), 'an END of another label');
});

t.test('a bundle cut in the middle of a root is refused; the callers under that root keep their connections', async (t) => {
  const setup = await startTwoRootFilesSidecar(t, t.testdir());
  const { own, caller, files, sidecar } = setup;
  const full = own.bundle + caller.bundle;
  const proc = sidecar.process!;
  const { get } = callerSession(t, setup);
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

t.test('a bundle rewritten in place and paused between its roots is not taken one root short; a real drop is, two seconds on', async (t) => {
  const setup = await startTwoRootFilesSidecar(t, t.testdir());
  const { own, caller, files, sidecar } = setup;
  const proc = sidecar.process!;
  const { get } = callerSession(t, setup);
  t.equal(await get(), 404, 'the caller under root 2 is answered');
  const waiting = (from: number) => proc.waitFor((line) => proc.lines.indexOf(line) >= from && /leaves out a root of the bundle in use: taken if it stays so/.test(String(line.msg)), 10_000);

  // `cat root1 > bundle.pem; (pause); cat root2 >> bundle.pem`: root 1 alone is a whole bundle
  let from = proc.lines.length;
  const file = await open(files.bundle, 'w');
  await file.write(own.bundle);
  await file.sync();
  await waiting(from);
  t.equal(await get(), 404, 'seen, and waited for: the open connection still answers');
  await file.write(caller.bundle);
  await file.close();
  // the whole bundle is the one in use: the wait ends without a swap
  await proc.waitFor((line) => proc.lines.indexOf(line) >= from && /changed again before the bundle that left out a root was taken: it is not/.test(String(line.msg)), 10_000);
  t.equal(await get(), 404, 'after the write: still answered');
  t.notOk(proc.lines.some((line) => /no longer holds/.test(String(line.msg))), 'the trust never narrowed');

  // root 2 really dropped: taken once the bytes have stood two seconds
  from = proc.lines.length;
  const dropped = performance.now();
  const again = await open(files.bundle, 'w');
  await again.write(own.bundle);
  await again.close();
  await waiting(from);
  await proc.waitFor((line) => proc.lines.indexOf(line) >= from && /no longer holds/.test(String(line.msg)), 10_000);
  t.ok(performance.now() - dropped >= 2_000, `narrowed ${Math.round(performance.now() - dropped)} ms after the write (2 s or more)`);
});
