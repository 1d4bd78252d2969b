// TLS session resumption on the inbound listener: off by default (no stateless session
// tickets, no server-side session cache: a TLS 1.3 client may still be handed a stateful
// ticket, which names nothing it could resume), so every caller's connection is a full handshake verified
// against the bundle of that moment; and still off after a rotation swaps the secure context.
// With `inbound.sessionResumption: true` the same client resumes: the control that shows
// these checks can see a resumption when there is one; and a rotation retires the tickets
// issued before it (each secure context seals them with a key of its own), as the README says.

import t from 'tap';
import tls from 'node:tls';
import { validateSvid } from '../../src/identity/svid.js';
import { SERVER_ID, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';

interface Connection {
  readonly reused: boolean;
  /** The last session the server offered on this connection (a ticket, or a TLS 1.2 session id). */
  readonly session: Buffer | undefined;
  readonly text: string;
}

/** One connection, one request, read until the server closes; resuming `session` if given. */
function connect(fx: InboundFixture, options: tls.ConnectionOptions, session?: Buffer): Promise<Connection> {
  return new Promise((resolve) => {
    let reused = false;
    let offered: Buffer | undefined;
    let text = '';
    const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: ['http/1.1'], ...options, ...(session ? { session } : {}) });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write('GET /resume HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
    });
    socket.on('session', (s: Buffer) => (offered = s));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ reused, session: offered, text }));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

/** Connects twice, the second time with whatever session the first was offered. */
async function twice(fx: InboundFixture, version: tls.SecureVersion): Promise<{ first: Connection; second: Connection }> {
  const options = { ...(await fx.tlsOptions()), minVersion: version, maxVersion: version };
  const first = await connect(fx, options);
  const second = await connect(fx, options, first.session);
  return { first, second };
}

t.test('by default a caller cannot resume: every connection is a full handshake', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    const { first, second } = await twice(fx, version);
    t.match(first.text, /^HTTP\/1\.1 200/, `${version}: served`);
    t.equal(second.reused, false, `${version}: a second connection with the first one's session is a full handshake`);
    t.match(second.text, /^HTTP\/1\.1 200/, `${version}: and is served`);
  }

  // a rotation installs a new secure context: it must not bring tickets back
  fx.identity.swap(validateSvid(await fx.pki.issue(SERVER_ID), SERVER_ID));
  const after = await twice(fx, 'TLSv1.3');
  t.equal(after.second.reused, false, 'after a rotation: still a full handshake');
});

t.test('inbound.sessionResumption: true lets a caller resume (the control)', async (t) => {
  const fx = await startInbound({ sessionResumption: true });
  t.teardown(() => fx.close());
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    const { first, second } = await twice(fx, version);
    t.ok(first.session, `${version}: a session is offered`);
    t.equal(second.reused, true, `${version}: and resumed`);
    t.match(second.text, /^HTTP\/1\.1 200/, `${version}: the resumed connection is served`);
  }
  fx.identity.swap(validateSvid(await fx.pki.issue(SERVER_ID), SERVER_ID));
  const after = await twice(fx, 'TLSv1.3');
  t.equal(after.second.reused, true, 'after a rotation too');
});

t.test('with sessionResumption: true a rotation retires the tickets issued before it', async (t) => {
  const fx = await startInbound({ sessionResumption: true });
  t.teardown(() => fx.close());
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    const options = { ...(await fx.tlsOptions()), minVersion: version, maxVersion: version };
    const before = await connect(fx, options);
    t.equal((await connect(fx, options, before.session)).reused, true, `${version}: resumed before the rotation`);
    // the same certificate's renewal: a new context, new ticket keys
    fx.identity.swap(validateSvid(await fx.pki.issue(SERVER_ID), SERVER_ID));
    const after = await connect(fx, options, before.session);
    t.equal(after.reused, false, `${version}: the ticket from before is not resumed after it`);
    t.match(after.text, /^HTTP\/1\.1 200/, `${version}: a full handshake, served`);
  }
});
