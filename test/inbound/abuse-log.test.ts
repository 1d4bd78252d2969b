// The warn lines of HTTP/2 sessions the inbound closes for the caller's abuse stay bounded: a
// caller breaking the protocol (meshcar codec) or resetting streams too fast (node codec) on a
// fresh connection each time has every close counted in meshcar_http2_sessions_closed_total,
// but one warn line per caller identity per window, not one per connection.

import t from 'tap';
import { Writable } from 'node:stream';
import http2 from 'node:http2';
import { pino } from 'pino';
import type { Direction, SessionRejectReason } from '../../src/metrics/traffic.js';
import { FRONTEND_ID, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const CONNECTIONS = 12;
const { NGHTTP2_CANCEL } = http2.constants;

/** A logger whose JSON lines land in `lines`. */
function recordingLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string; suppressed?: number }> } {
  const lines: Array<{ level: number; msg: string; suppressed?: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

function recordRejections(fx: InboundFixture): SessionRejectReason[] {
  const rejected: SessionRejectReason[] = [];
  Object.assign(fx.observer, { sessionRejected: (_d: Direction, reason: SessionRejectReason) => rejected.push(reason) });
  return rejected;
}

/** Waits (bounded) until `done()` holds. */
async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('meshcar codec: a caller breaking the protocol on connection after connection: every close counted, one warn line', async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({ codec: 'meshcar', logger });
  t.teardown(() => fx.close());
  const rejected = recordRejections(fx);
  const tlsOptions = await fx.tlsOptions(FRONTEND_ID);
  for (let i = 0; i < CONNECTIONS; i++) {
    const raw = await connectRawH2(fx.port, tlsOptions, { ackSettings: true });
    // DATA on stream 0: a connection error (PROTOCOL_ERROR), RFC 9113 §6.1
    raw.write(frame(FRAME.DATA, 0, 0, Buffer.from('x')));
    await raw.closed;
  }
  await until(() => rejected.length === CONNECTIONS, `${CONNECTIONS} closes counted`);
  t.same(new Set(rejected), new Set(['protocol_error']), `${CONNECTIONS} sessions closed for protocol_error, all counted`);
  const warned = lines.filter((l) => l.level === 40 && l.msg.startsWith('inbound HTTP/2 session closed'));
  t.equal(warned.length, 1, `one warn line for ${CONNECTIONS} closed sessions (${warned.length})`);
});

t.test('node codec: a caller tripping the rapid-reset guard on connection after connection: every close counted, one warn line', async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({ codec: 'node', logger, limits: { maxResetsPer10s: 5 } });
  t.teardown(() => fx.close());
  const rejected = recordRejections(fx);
  const tlsOptions = await fx.tlsOptions(FRONTEND_ID);
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(NGHTTP2_CANCEL);
  const fields = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'orders'], [':path', '/orders']] as const;
  for (let i = 0; i < CONNECTIONS; i++) {
    const raw = await connectRawH2(fx.port, tlsOptions, { ackSettings: true });
    // 20 streams, each opened and cancelled at once: past 5 premature resets
    const batch: Buffer[] = [];
    for (let s = 0; s < 20; s++) batch.push(requestHeaders(1 + 2 * s, fields, false), frame(FRAME.RST_STREAM, 0, 1 + 2 * s, cancel));
    raw.write(Buffer.concat(batch));
    await raw.closed;
  }
  await until(() => rejected.length === CONNECTIONS, `${CONNECTIONS} closes counted`);
  t.same(new Set(rejected), new Set(['rapid_reset']), `${CONNECTIONS} sessions closed for rapid_reset, all counted`);
  const warned = lines.filter((l) => l.level === 40 && l.msg.startsWith('inbound HTTP/2 session closed'));
  t.equal(warned.length, 1, `one warn line for ${CONNECTIONS} closed sessions (${warned.length})`);
});
