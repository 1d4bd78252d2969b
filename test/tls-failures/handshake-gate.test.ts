// The handshake gate (src/tls-failures/handshake-gate.ts) in front of the inbound listener: a
// caller's certificate message is judged from its DER before OpenSSL parses it. A certificate
// whose EC key has explicit parameters over a crafted field (fixtures/hostile-chain/slow-ec.pem)
// costs OpenSSL ~250 ms to decode, whoever issued it: sent after a mesh SVID it is refused with
// nothing parsed, on TLS 1.3 (its flight opened with the handshake secret) and TLS 1.2 (in the
// clear). Callers of the mesh are served over every TLS 1.3 suite meshcar offers, TLS 1.2, a
// HelloRetryRequest and records cut into small TCP writes. Real sockets, real TLS.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { connectFrom as request, outcomeOf, type Outcome } from '../helpers/tls-outcome.js';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { waitFor } from '../helpers/mode-gate.js';
import { onRecords } from '../helpers/tls-records.js';
import { makePki } from '../helpers/pki.js';
import { HandshakeGate, MAX_CERTIFICATE_MESSAGE } from '../../src/tls-failures/handshake-gate.js';
import { certificateMessageRefusal } from '../../src/tls-failures/costly-chains.js';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-chain/', import.meta.url));
const SLOW_EC = readFileSync(`${HOSTILE}slow-ec.pem`, 'utf8');
const SMALL = readFileSync(`${HOSTILE}ec-small.pem`, 'utf8');
const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

/** A relay from a loopback port to the inbound that passes the caller's bytes on `size` bytes at a time, each write on its own turn of the loop. */
async function choppingRelay(fx: InboundFixture, size: number): Promise<{ port: number; close(): void }> {
  const server = net.createServer((caller) => {
    const inbound = net.connect({ host: '127.0.0.1', port: fx.port, noDelay: true });
    let queue = Promise.resolve();
    caller.on('data', (chunk: Buffer) => {
      for (let at = 0; at < chunk.length; at += size) {
        const piece = chunk.subarray(at, at + size);
        queue = queue.then(() => new Promise<void>((done) => setImmediate(() => inbound.write(piece, () => done()))));
      }
    });
    inbound.pipe(caller);
    caller.on('error', () => inbound.destroy());
    inbound.on('error', () => caller.destroy());
    caller.on('close', () => inbound.destroy());
    inbound.on('close', () => caller.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

const refusedByGate = (fx: InboundFixture) => fx.observer.tlsFailures.filter((f) => f.reason === 'invalid_certificate').length;

t.test('a certificate message is judged from its DER', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  const mesh = leaf.chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map(derOf);
  const tls12 = (ders: Buffer[]) => {
    const entries = ders.map((der) => Buffer.concat([Buffer.from([der.length >> 16, (der.length >> 8) & 0xff, der.length & 0xff]), der]));
    const list = Buffer.concat(entries);
    return Buffer.concat([Buffer.from([list.length >> 16, (list.length >> 8) & 0xff, list.length & 0xff]), list]);
  };
  const tls13 = (ders: Buffer[]) => {
    const entries = ders.map((der) => Buffer.concat([Buffer.from([der.length >> 16, (der.length >> 8) & 0xff, der.length & 0xff]), der, Buffer.from([0, 0])]));
    const list = Buffer.concat(entries);
    return Buffer.concat([Buffer.from([0, list.length >> 16, (list.length >> 8) & 0xff, list.length & 0xff]), list]);
  };
  t.equal(certificateMessageRefusal(tls13(mesh), true), undefined, 'a mesh SVID and its issuer (TLS 1.3) pass');
  t.equal(certificateMessageRefusal(tls12(mesh), false), undefined, 'and in TLS 1.2 form');
  t.equal(certificateMessageRefusal(tls13([]), true), undefined, 'an empty list passes (OpenSSL refuses it, at no cost)');
  t.match(certificateMessageRefusal(tls13([...mesh, derOf(SLOW_EC)]), true), /explicit parameters/, 'a key with explicit parameters is refused');
  t.match(certificateMessageRefusal(tls13([...mesh, ...mesh, derOf(SMALL)]), true), /5 certificates/, 'five certificates are refused');
  t.match(certificateMessageRefusal(tls12(mesh).subarray(0, 40), false), /malformed/, 'a cut list is refused as malformed');
  t.match(certificateMessageRefusal(tls13(mesh), false), /malformed/, 'TLS 1.3 entries read as TLS 1.2: malformed');
});

t.test('callers of the mesh are served through the gate', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  const good = { cert: leaf.chainPem, key: leaf.privateKeyPem };
  for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
    t.equal(await request(fx, '127.0.0.1', good, { ciphers: suite }), 'served', `TLS 1.3 with ${suite}`);
  }
  t.equal(await request(fx, '127.0.0.1', good, { maxVersion: 'TLSv1.2' }), 'served', 'TLS 1.2');
  // the caller's first key share is for a group the inbound does not take: it is asked again (a second ClientHello)
  t.equal(await request(fx, '127.0.0.1', good, { ecdhCurve: 'P-521:P-384' }), 'served', 'after a HelloRetryRequest');
  const relay = await choppingRelay(fx, 7);
  t.teardown(() => relay.close());
  const chopped = await outcomeOf(tls.connect({ host: '127.0.0.1', port: relay.port, ALPNProtocols: ['http/1.1'], ca: fx.pki.bundlePem, ...good, checkServerIdentity: () => undefined }));
  t.equal(chopped, 'served', 'its records cut into 7-byte writes');
  t.equal(refusedByGate(fx), 0, 'none refused by the gate');
});

t.test('a certificate costly to decode is refused before OpenSSL parses it', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  // the client pays the decode once per context, here, building it; the inbound would pay it per
  // handshake. The version and groups go in the context: tls.connect reads neither beside one
  const hostile = (options: tls.SecureContextOptions) => tls.createSecureContext({ cert: leaf.chainPem + SLOW_EC, key: leaf.privateKeyPem, ca: fx.pki.bundlePem, ...options });
  const good = { cert: leaf.chainPem, key: leaf.privateKeyPem };
  // the third: its first key share for a group the inbound does not take, so that it is asked
  // again, and sends a ChangeCipherSpec before its second hello (TLS 1.3's middlebox compatibility)
  for (const [from, version, groups] of [['127.0.0.31', 'TLSv1.3', undefined], ['127.0.0.32', 'TLSv1.2', undefined], ['127.0.0.34', 'TLSv1.3', 'P-521:P-384']] as const) {
    const context = hostile({ maxVersion: version, ...(groups ? { ecdhCurve: groups } : {}) });
    const before = process.cpuUsage();
    const outcome = await request(fx, from, { cert: '', key: '' }, { secureContext: context, cert: undefined, key: undefined });
    const cpu = process.cpuUsage(before);
    const ms = (cpu.user + cpu.system) / 1000;
    const how = `${version}${groups ? ' after a HelloRetryRequest' : ''}`;
    t.not(outcome, 'served', `${how}: a mesh SVID followed by the crafted certificate is not served`);
    t.ok(ms < 100, `${how}: the handshake cost ${ms.toFixed(1)} ms of CPU in all (OpenSSL's decode of the key alone: ~250 ms)`);
    t.equal(await request(fx, from, good), 'closed at accept', `${how}: its address is refused at accept after it (the whole budget spent)`);
  }
  t.equal(refusedByGate(fx), 3, 'all three refused by the gate (invalid_certificate)');
  t.match(fx.observer.tlsFailureWords.find((words) => words.includes('refused before they were parsed')) ?? '', /refused before they were parsed: a certificate with an EC key with explicit parameters/, 'said in words');
});

t.test('a certificate message larger than any mesh path is refused as it is announced', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  const copies = Math.ceil((2 * MAX_CERTIFICATE_MESSAGE) / derOf(SMALL).length);
  const outcome = await request(fx, '127.0.0.33', { cert: leaf.chainPem + SMALL.repeat(copies), key: leaf.privateKeyPem });
  t.not(outcome, 'served', `a mesh SVID followed by ${copies} small certificates (~${Math.round((copies * derOf(SMALL).length) / 1024)} KiB) is not served`);
  t.equal(refusedByGate(fx), 1, 'refused by the gate');
  const said = fx.observer.tlsFailureWords.find((words) => words.includes('refused before they were parsed')) ?? '';
  t.match(said, /certificate message of \d+ bytes \(more than 32768\)/, `said in words: ${said}`);
});

/** Our ServerHello as the TLS socket writes it: TLS 1.2 (no supported_versions), or TLS 1.3. */
function serverHello(tls13: boolean): Buffer {
  const extensions = tls13 ? Buffer.from([0, 0x2b, 0, 2, 3, 4]) : Buffer.alloc(0);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 1), Buffer.from([0, 0xc0, 0x2b, 0, 0, extensions.length]), extensions]);
  const message = Buffer.concat([Buffer.from([2, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 3, 0, message.length]), message]);
}

t.test("after a TLS 1.2 caller's ChangeCipherSpec the gate reads nothing more; under TLS 1.3 it still does", async (t) => {
  // a TLS 1.2 caller resuming its session sends a ChangeCipherSpec, then its Finished encrypted
  // in a handshake record: read in the clear, its first bytes may look like anything
  const ccs = Buffer.from([20, 3, 3, 0, 1, 1]);
  const looksLikeCertificates = Buffer.concat([Buffer.from([22, 3, 3, 0, 40, 11, 0xff, 0xff, 0xff]), Buffer.alloc(36, 7)]);
  for (const tls13 of [false, true]) {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [raw] = (await once(server, 'connection')) as [net.Socket];
    let refused = false;
    const gate = new HandshakeGate(raw, () => (refused = true));
    let passed = 0;
    gate.on('data', (chunk: Buffer) => (passed += chunk.length));
    gate.write(serverHello(tls13));
    client.write(Buffer.concat([ccs, looksLikeCertificates]));
    if (!tls13) {
      await waitFor('the bytes passed', () => passed === ccs.length + looksLikeCertificates.length);
      t.notOk(refused, 'TLS 1.2: passed unread, not refused');
    } else {
      await waitFor('the gate refused', () => refused);
      t.match(gate.refusal, /certificate message of 16777215 bytes/, 'TLS 1.3: still read, and a certificate message that large is refused');
    }
    client.destroy();
    server.close();
  }
});

/**
 * A TLS 1.3 client (AES-128-GCM) that sends `extra(seal)` before its own first protected
 * handshake record, sealed with its handshake key (its own records are sealed again after them,
 * with the sequence numbers that follow).
 */
function injectingClient(fx: InboundFixture, from: string, credentials: tls.ConnectionOptions, extra: (seal: (type: number, content: Buffer) => Buffer) => Buffer[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port: fx.port, localAddress: from });
    let keys: { key: Buffer; iv: Buffer } | undefined;
    let pending = Buffer.alloc(0);
    let sent = 0; // records sealed on the wire
    let read = 0; // the client's own records opened
    let handshakeDone = false;
    const expand = (secret: Buffer, label: string, length: number) => {
      const name = Buffer.from(`tls13 ${label}`);
      return createHmac('sha256', secret).update(Buffer.concat([Buffer.from([0, length, name.length]), name, Buffer.from([0, 1])])).digest().subarray(0, length);
    };
    const nonce = (n: number) => {
      const iv = Buffer.from(keys!.iv);
      iv.writeUInt32BE((iv.readUInt32BE(8) ^ n) >>> 0, 8);
      return iv;
    };
    const seal = (type: number, content: Buffer) => {
      const inner = Buffer.concat([content, Buffer.from([type])]);
      const header = Buffer.from([23, 3, 3, (inner.length + 16) >> 8, (inner.length + 16) & 0xff]);
      const cipher = createCipheriv('aes-128-gcm', keys!.key, nonce(sent++));
      cipher.setAAD(header);
      return Buffer.concat([header, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
    };
    const open = (record: Buffer) => {
      try {
        const decipher = createDecipheriv('aes-128-gcm', keys!.key, nonce(read));
        decipher.setAAD(record.subarray(0, 5));
        decipher.setAuthTag(record.subarray(record.length - 16));
        const plain = Buffer.concat([decipher.update(record.subarray(5, record.length - 16)), decipher.final()]);
        read++;
        return { type: plain[plain.length - 1]!, content: plain.subarray(0, plain.length - 1) };
      } catch {
        return undefined; // under the application key: the handshake is over
      }
    };
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          const record = pending.subarray(0, 5 + pending.readUInt16BE(3));
          pending = pending.subarray(record.length);
          const opened = record[0] === 23 && keys !== undefined && !handshakeDone ? open(record) : undefined;
          if (opened === undefined) {
            if (record[0] === 23 && keys !== undefined) handshakeDone = true;
            raw.write(record);
            continue;
          }
          if (read === 1) for (const injected of extra(seal)) raw.write(injected);
          raw.write(seal(opened.type, opened.content));
        }
        done();
      },
    });
    raw.on('data', (data: Buffer) => duplex.push(data));
    raw.on('error', () => {});
    raw.on('close', () => duplex.destroy());
    const socket = tls.connect({ socket: duplex, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ...credentials, rejectUnauthorized: false });
    socket.on('keylog', (line: Buffer) => {
      const [label, , secret] = line.toString('latin1').trim().split(' ');
      if (label !== 'CLIENT_HANDSHAKE_TRAFFIC_SECRET') return;
      const key = Buffer.from(secret!, 'hex');
      keys = { key: expand(key, 'key', 16), iv: expand(key, 'iv', 12) };
    });
    resolve(outcomeOf(socket));
  });
}

t.test('a user_canceled alert before the certificates (OpenSSL carries on past it) opens nothing', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  const good = { cert: leaf.chainPem, key: leaf.privateKeyPem };
  const userCanceled = (seal: (type: number, content: Buffer) => Buffer) => [seal(21, Buffer.from([1, 90]))];
  t.equal(await injectingClient(fx, '127.0.0.41', good, userCanceled), 'served', 'a mesh caller with the alert injected is served (the injection works)');
  // built before the measure: the client pays the crafted key's decode here, once
  const hostile = tls.createSecureContext({ cert: leaf.chainPem + SLOW_EC, key: leaf.privateKeyPem });
  const before = process.cpuUsage();
  const outcome = await injectingClient(fx, '127.0.0.42', { secureContext: hostile }, userCanceled);
  const cpu = process.cpuUsage(before);
  const ms = (cpu.user + cpu.system) / 1000;
  t.not(outcome, 'served', 'the crafted certificate after the alert is not served');
  t.ok(ms < 100, `the handshake cost ${ms.toFixed(1)} ms of CPU in all (the crafted key's decode alone: ~250 ms)`);
  t.equal(refusedByGate(fx), 1, 'refused by the gate (invalid_certificate)');
});

t.test("an empty ChangeCipherSpec before a TLS 1.2 caller's certificates opens nothing", async (t) => {
  // OpenSSL skips a record of no bytes, of any type: an empty ChangeCipherSpec opened the gate
  // under TLS 1.2, and the crafted certificate after it was parsed (a review: 308 ms a handshake)
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const leaf = await fx.client();
  // the version in the context: tls.connect reads no version option beside a secureContext
  const hostile = tls.createSecureContext({ cert: leaf.chainPem + SLOW_EC, key: leaf.privateKeyPem, ca: fx.pki.bundlePem, maxVersion: 'TLSv1.2' });
  // a relay that puts an empty ChangeCipherSpec before the caller's second record (its certificates)
  const relay = net.createServer((caller) => {
    const inbound = net.connect({ host: '127.0.0.1', port: fx.port, localAddress: '127.0.0.37', noDelay: true });
    onRecords(caller, (whole, index) => {
      if (index === 1) inbound.write(Buffer.from([20, 3, 3, 0, 0]));
      inbound.write(whole);
    });
    inbound.pipe(caller);
    caller.on('error', () => inbound.destroy());
    inbound.on('error', () => caller.destroy());
    caller.on('close', () => inbound.destroy());
    inbound.on('close', () => caller.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.teardown(() => relay.close());
  const before = process.cpuUsage();
  let version = '';
  const caller = tls.connect({ host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port, secureContext: hostile, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined });
  caller.on('keylog', (line: Buffer) => (version ||= line.includes('HANDSHAKE_TRAFFIC_SECRET') ? 'TLS 1.3' : ''));
  const outcome = await outcomeOf(caller);
  t.equal(version, '', 'over TLS 1.2 (no TLS 1.3 secret logged)');
  const cpu = process.cpuUsage(before);
  const ms = (cpu.user + cpu.system) / 1000;
  t.not(outcome, 'served', `not served (${outcome})`);
  t.ok(ms < 100, `the handshake cost ${ms.toFixed(1)} ms of CPU in all (OpenSSL's decode of the crafted key: ~250 ms)`);
  t.equal(refusedByGate(fx), 1, 'refused by the gate (invalid_certificate)');
});

t.test('records held before the certificates are bounded in number; an SSLv2-format hello is refused', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const record = (type: number, payload: Buffer) => Buffer.concat([Buffer.from([type, 3, 3, payload.length >> 8, payload.length & 0xff]), payload]);
  const closedAfter = async (from: string, bytes: Buffer) => {
    const socket = net.connect({ host: '127.0.0.1', port: fx.port, localAddress: from });
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(bytes);
    await once(socket, 'close');
  };
  // the start of a certificate message, then alerts in the clear: each is held behind it
  const alerts = Array.from({ length: 40 }, () => record(21, Buffer.from([1, 90])));
  await closedAfter('127.0.0.43', Buffer.concat([record(22, Buffer.from([11, 0, 3, 232, 0, 0])), ...alerts]));
  t.ok(fx.observer.tlsFailureWords.some((words) => /more than 32 TLS records before its certificates/.test(words)), 'refused after 32 records');
  await closedAfter('127.0.0.44', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]));
  t.ok(fx.observer.tlsFailureWords.some((words) => /an SSLv2-format hello/.test(words)), 'an SSLv2-format hello is refused');
  t.same(fx.observer.tlsFailures.map((f) => f.reason), ['protocol', 'protocol'], 'both as protocol failures');
});

t.test("failing handshakes are charged the checks of a chain the gate passed, beyond a mesh path's: three P-521 certificates spend the budget, another CA's P-256 SVID never does", async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  // another CA's leaf, issuer and root, all P-521 (3.6 ms of checks by the gate's estimate, under its 4 ms)
  const p521 = { cert: readFileSync(`${HOSTILE}p521-foreign.pem`, 'utf8'), key: readFileSync(`${HOSTILE}p521-foreign.key`, 'utf8') };
  const stranger = await (await makePki(fx.pki.trustDomain)).issue('spiffe://mesh.test/svc/frontend');
  const foreign = { cert: stranger.chainPem, key: stranger.privateKeyPem };
  const attempts = async (from: string, credentials: { cert: string; key: string }) => {
    const outcomes: string[] = [];
    for (let i = 0; i < 40; i++) outcomes.push(await request(fx, from, credentials));
    return outcomes;
  };
  const heavy = await attempts('127.0.0.51', p521);
  t.notOk(heavy.includes('served'), 'none served (another CA)');
  t.ok(heavy.includes('closed at accept'), `three P-521 certificates: refused at accept after ${heavy.indexOf('closed at accept')} failures (each charged ~3.4 KiB for its checks)`);
  const light = await attempts('127.0.0.52', foreign);
  t.notOk(light.includes('served'), 'none served (another CA)');
  t.notOk(light.includes('closed at accept'), "another CA's P-256 SVID: 40 failures, none refused at accept (a broken caller of the mesh redialling shuts nobody out)");
});
