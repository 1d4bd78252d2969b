// The CA's own timers follow the wall clock: the automatic issuer rotation (issuerRotation) and
// the CA server's renewal of its own certificate. Both wait for a wall-clock instant on a timer
// that counts the process's running time; before, after the host was suspended and resumed (or
// the clock stepped ahead) past that instant, the rotation still waited its whole timer, while
// the issuer neared or passed its end by the wall clock. Now the process's clock watch (every
// 30 s; here every 100 ms) sees the jump and they run at once, the rotation with a warning
// naming the jump. The test moves this process's Date (helpers/movable-clock.ts); the CA
// server, its folder and TLS are real.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCaDir, startTestCa } from '../helpers/ca.js';
import { lookOftenAtTheClock, movableClock, waitFor } from '../helpers/movable-clock.js';
import { rotateIssuer } from '../../src/ca/lifecycle.js';

const HOUR = 3_600_000;

/** The serial of the certificate the CA server presents now (not verified: it may start after the host's real time). */
async function serverSerial(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
  socket.destroy();
  return serial;
}

t.test('the wall clock jumping past the issuer rotation time: rotated at the next look', async (t) => {
  const dir = await makeCaDir();
  // an issuer ending in 2 h, rotated 1 h before its end: due in about an hour
  await rotateIssuer(dir, { lifetimeMs: 2 * HOUR });
  const ca = await startTestCa({ issuerRotation: { beforeMs: HOUR, ttlMs: 24 * HOUR } }, dir);
  t.teardown(() => ca.close());
  t.teardown(lookOftenAtTheClock(100));
  const rotated = () => ca.logLines.filter((l) => l.msg === 'issuer rotated automatically');
  // control: a few looks of the watch with the clock where it is rotate nothing
  t.notOk(await waitFor(() => rotated().length > 0, 500), 'no rotation before the clock moves');

  const clock = movableClock();
  t.teardown(clock.restore);
  // 70 min pass by the wall clock in a moment: the rotation came due 10 min ago
  clock.offset.ms = 70 * 60_000;
  t.ok(await waitFor(() => rotated().length === 1, 10_000), 'the issuer is rotated within seconds of the jump');
  const issuerEnd = Date.parse(String(rotated()[0]?.notAfter));
  t.ok(issuerEnd - Date.now() > 23 * HOUR, 'the new issuer has its day ahead by the moved clock');
  const warned = ca.logLines.filter((l) => l.level === 40 && /wall clock moved ahead by \d+ s/.test(String(l.msg)));
  t.equal(warned.length, 1, 'one warning names the jump');
  t.match(String(warned[0]?.msg), /suspend.*the issuer rotation due meanwhile runs now/, 'and what it means');
});

t.test("the wall clock jumping past the CA server certificate's renewal time: renewed at the next look", async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  t.teardown(lookOftenAtTheClock(100));
  const first = await serverSerial(ca.server.port);
  // its certificate lasts 24 h and is renewed at half what is left: in about 12 h
  t.equal(await serverSerial(ca.server.port), first, 'the same certificate before the clock moves');

  const clock = movableClock();
  t.teardown(clock.restore);
  clock.offset.ms = 13 * HOUR;
  // one connection every 100 ms, for at most 10 s (by the running time)
  let now = first;
  for (let i = 0; i < 100 && now === first; i += 1) {
    await sleep(100);
    now = await serverSerial(ca.server.port);
  }
  t.not(now, first, 'the CA server presents a new certificate within seconds of the jump');
});
