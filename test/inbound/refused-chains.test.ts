// A caller whose certificate chain fails verification costs the inbound every signature of that
// chain, checked by OpenSSL with keys the caller made (test/fixtures/hostile-chain: ten RSA-3072
// intermediates with 3,064-bit exponents, ~60 ms of CPU per handshake against ~4 ms). When the
// refused chain was costly to check (more certificates than a mesh SVID path, or a key no SVID
// has), its address is refused at accept, before any crypto, for 1 s, doubling with each such
// chain that follows, and its other handshakes in progress are closed before their chains are
// read. A chain refused for what a mesh caller gets wrong (another CA's SVID) costs nothing
// more and shuts nobody out. Real sockets, real mTLS, SVIDs from our CA and from another one,
// the hostile chain as a client sends it.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { addressKey, costlyToCheck, RefusedChains } from '../../src/inbound/refused-chains.js';
import { makePki } from '../helpers/pki.js';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-chain/', import.meta.url));
const hostile = { cert: readFileSync(`${HOSTILE}chain10.pem`, 'utf8'), key: readFileSync(`${HOSTILE}leaf10.key`, 'utf8') };

type Outcome = 'served' | 'refused in the handshake' | 'closed at accept';

/** One connection from `from`: served (handshake done, the server answered an HTTP/1.1 request), refused in its handshake (the server spoke TLS), or closed at accept (nothing came back). */
function connectFrom(fx: InboundFixture, from: string, credentials: { cert: string; key: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    let spoke = false;
    const socket = tls.connect({ host: '127.0.0.1', port: fx.port, localAddress: from, ALPNProtocols: ['http/1.1'], ca: fx.pki.bundlePem, ...credentials, checkServerIdentity: () => undefined });
    // TLS 1.3: the client's handshake ends before the server has judged its certificate
    socket.once('secureConnect', () => {
      spoke = true;
      socket.write('GET /x HTTP/1.1\r\nhost: orders\r\n\r\n');
    });
    socket.once('data', () => {
      socket.destroy();
      resolve('served');
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(spoke ? 'refused in the handshake' : 'closed at accept'));
  });
}

const verifiedFailures = (fx: InboundFixture) => fx.observer.tlsFailures.filter((f) => f.reason === 'unknown_ca').length;

t.test("a refused chain's address is refused at accept, for 1 s then 2 s; other addresses are served meanwhile", async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const good = { cert: (await fx.client()).chainPem, key: (await fx.client()).privateKeyPem };
  t.equal(await connectFrom(fx, '127.0.0.1', good), 'served', 'a caller of the mesh is served');

  t.equal(await connectFrom(fx, '127.0.0.1', hostile), 'refused in the handshake', 'the hostile chain is refused in its handshake');
  const refusedAt = performance.now();
  t.equal(verifiedFailures(fx), 1, 'its chain was checked once');
  t.equal(await connectFrom(fx, '127.0.0.1', hostile), 'closed at accept', 'the same chain again right after: closed at accept');
  t.equal(await connectFrom(fx, '127.0.0.1', good), 'closed at accept', 'and a caller of the mesh from that address too');
  t.equal(verifiedFailures(fx), 1, 'no chain checked for either');
  t.ok(fx.observer.connectionRefusals.filter((r) => r === 'chain_refused').length >= 2, 'counted as chain_refused');
  t.equal(await connectFrom(fx, '127.0.0.2', good), 'served', 'another address is served meanwhile');

  let back: Outcome = 'closed at accept';
  while (back !== 'served' && performance.now() - refusedAt < 5_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    back = await connectFrom(fx, '127.0.0.1', good);
  }
  const first = performance.now() - refusedAt;
  t.equal(back, 'served', `the address is served again (${Math.round(first)} ms after the refused chain)`);
  t.ok(first >= 950 && first < 2_500, 'after about a second');

  t.equal(await connectFrom(fx, '127.0.0.1', hostile), 'refused in the handshake', 'the hostile chain again once the time is over: checked and refused');
  const againAt = performance.now();
  back = 'closed at accept';
  while (back !== 'served' && performance.now() - againAt < 6_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    back = await connectFrom(fx, '127.0.0.1', good);
  }
  const second = performance.now() - againAt;
  t.equal(back, 'served', `served again (${Math.round(second)} ms after the second refused chain)`);
  t.ok(second >= 1_950, 'after about two seconds: the second refusal lasts twice the first');
  t.equal(verifiedFailures(fx), 2, 'two chains checked in all');
});

t.test('a cheap refused chain shuts nobody out; two certificates, one of them with a costly key, do', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const good = { cert: (await fx.client()).chainPem, key: (await fx.client()).privateKeyPem };
  const stranger = await (await makePki(fx.pki.trustDomain)).issue('spiffe://mesh.test/svc/frontend');
  t.equal(await connectFrom(fx, '127.0.0.4', { cert: stranger.chainPem, key: stranger.privateKeyPem }), 'refused in the handshake', "another CA's SVID (leaf and issuer) is refused");
  t.equal(verifiedFailures(fx), 1, 'as unknown_ca');
  t.equal(await connectFrom(fx, '127.0.0.4', good), 'served', 'a caller of the mesh from that address is served right after');
  t.notOk(fx.observer.connectionRefusals.includes('chain_refused'), 'nothing refused at accept');

  // the leaf and its first self-made issuer only: an RSA-3072 key with a 3,064-bit exponent
  const pems = hostile.cert.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!;
  t.equal(await connectFrom(fx, '127.0.0.4', { cert: pems.slice(0, 2).join(''), key: hostile.key }), 'refused in the handshake', 'a leaf and an issuer whose key no SVID has: refused');
  t.equal(await connectFrom(fx, '127.0.0.4', good), 'closed at accept', 'and its address is refused at accept');
  t.ok(fx.observer.connectionRefusals.includes('chain_refused'), 'counted as chain_refused');
});

t.test('a handshake that fails after more than 8 KiB from the caller counts as costly: a chain is checked as it arrives, before the caller proves its key', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const good = { cert: (await fx.client()).chainPem, key: (await fx.client()).privateKeyPem };
  /** A handshake record of `size` bytes of junk from `from`, on a raw socket: resolves once the server has closed it. */
  const junkRecord = (from: string, size: number) =>
    new Promise<void>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: fx.port, localAddress: from }, () => {
        socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, size >> 8, size & 0xff]), Buffer.alloc(size, 0x41)]));
      });
      socket.on('error', () => {});
      socket.resume();
      socket.once('close', () => resolve());
    });
  await junkRecord('127.0.0.5', 4_000);
  t.equal(await connectFrom(fx, '127.0.0.5', good), 'served', 'a 4,000-byte broken handshake shuts nobody out');
  const plainHttp = await new Promise<string>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: fx.port, localAddress: '127.0.0.5' }, () => socket.write(`GET / HTTP/1.1\r\nhost: orders\r\ncookie: ${'c'.repeat(12_000)}\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.once('close', () => resolve(answer));
  });
  t.match(plainHttp, /^HTTP\/1\.1 400 /, 'plain HTTP with a 12 KB head is answered 400');
  t.equal(await connectFrom(fx, '127.0.0.5', good), 'served', 'and shuts nobody out (OpenSSL read none of it as a handshake)');
  await junkRecord('127.0.0.5', 12_000);
  t.equal(await connectFrom(fx, '127.0.0.5', good), 'closed at accept', 'a 12,000-byte one has its address refused at accept');
  t.ok(fx.observer.connectionRefusals.includes('chain_refused'), 'counted as chain_refused');
});

t.test('what is costly to check', async (t) => {
  const der = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const pems = hostile.cert.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map(der);
  const pki = await makePki('mesh.test');
  const svid = await pki.issue('spiffe://mesh.test/svc/frontend');
  const mesh = [der(svid.certificatePem), der(pki.issuerPem), der(pki.rootPem)];
  t.notOk(costlyToCheck({ certificates: mesh, total: 3 }), 'leaf, issuer and root of a mesh (P-256)');
  t.notOk(costlyToCheck({ certificates: [...mesh, mesh[1]!], total: 4 }), 'four such certificates');
  t.ok(costlyToCheck({ certificates: [...mesh, mesh[1]!, mesh[1]!], total: 5 }), 'five');
  t.ok(costlyToCheck({ certificates: pems.slice(0, 2), total: 2 }), 'an RSA key with another exponent than 65537');
  t.notOk(costlyToCheck({ certificates: [pems[0]!], total: 1 }), 'the hostile leaf alone (P-256)');
});

t.test('the handshakes in progress from the address are closed when one of its chains is refused', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const cpuBefore = process.cpuUsage();
  const outcomes = await Promise.all(Array.from({ length: 6 }, () => connectFrom(fx, '127.0.0.3', hostile)));
  const cpu = process.cpuUsage(cpuBefore);
  t.ok(
    outcomes.every((o) => o !== 'served'),
    `none served (${outcomes.join(', ')})`,
  );
  t.equal(verifiedFailures(fx), 1, `six hostile handshakes at once: one chain checked, the others closed before theirs was read (CPU of the test's process: ${Math.round((cpu.user + cpu.system) / 1000)} ms)`);
  t.ok(fx.observer.connectionRefusals.filter((r) => r === 'chain_refused').length >= 5, 'the five others counted as chain_refused');
});

t.test('an address is judged by its IPv4 form, an IPv6 one by its /64', async (t) => {
  t.equal(addressKey('10.1.2.3'), '10.1.2.3');
  t.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3', 'IPv4-mapped');
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64', 'the same /64 written short');
  t.equal(addressKey('2001:0db8::1'), '2001:db8:0:0::/64', 'leading zeros and a gap in the prefix');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone id dropped');
});

t.test('refusals double up to a minute, and start again at 1 s after 10 quiet minutes', async (t) => {
  const clock = { ms: 0 };
  const chains = new RefusedChains(() => clock.ms);
  const lengths: number[] = [];
  for (let i = 0; i < 8; i++) {
    lengths.push(chains.refuse('a'));
    clock.ms += lengths.at(-1)!;
  }
  t.same(lengths, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
  t.equal(chains.refusedFor('a'), 0, 'over once its time has passed');
  chains.refuse('a');
  t.equal(chains.refusedFor('a'), 60_000, 'refused for the whole minute at first');
  clock.ms += 59_000;
  t.equal(chains.refusedFor('a'), 1_000, 'and for what is left of it');
  t.equal(chains.refusedFor('b'), 0, 'another address is not');
  clock.ms += 10 * 60_000;
  t.equal(chains.refuse('a'), 1_000, 'after 10 quiet minutes: 1 s again');
});

t.test('at most 10,000 addresses are remembered: the oldest refusal is forgotten first', async (t) => {
  const clock = { ms: 0 };
  const chains = new RefusedChains(() => clock.ms);
  for (let i = 0; i <= 10_000; i++) chains.refuse(`10.0.${i >> 8}.${i & 255}`);
  t.equal(chains.refusedFor('10.0.0.0'), 0, 'the first forgotten');
  t.equal(chains.refusedFor('10.0.0.1'), 1_000, 'the second still refused');
  t.equal(chains.refusedFor('10.0.39.16'), 1_000, 'the last refused');
});
