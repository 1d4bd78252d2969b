// http2.codec node: a caller (a valid SVID, so past mTLS) whose flood or protocol violation makes
// nghttp2 close its session is counted in meshcar_http2_sessions_closed_total with a reason and
// warned about once per caller and window, as on the meshcar codec. Before, Node's session
// 'error' was only logged at debug: a PING flood, a CONTINUATION flood or an empty-DATA flood
// closed the connection and left no trace in the metrics. Another caller is
// served meanwhile. Raw frames over real mTLS, Node's codec on the inbound.

import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Direction, SessionRejectReason } from '../../src/metrics/traffic.js';
import { nodeSessionFault } from '../../src/inbound/node-session-faults.js';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FRAME, headerBlock, requestHeaders } from '../helpers/raw-h2.js';

const GET: Array<readonly [string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':path', '/orders'], [':authority', 'localhost']];
const POST: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/orders'], [':authority', 'localhost']];
const CONTINUATION = 0x9;

function ping(i: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(i, 4);
  return frame(FRAME.PING, 0, 0, payload);
}

// each sent at once: nghttp2 sees the whole flood before the caller could read an answer
const ATTACKS: ReadonlyArray<{ name: string; reason: SessionRejectReason; frames: () => Buffer[] }> = [
  // 2,000 PINGs: more ACKs than nghttp2 lets wait (NGHTTP2_ERR_FLOODED)
  { name: 'a PING flood', reason: 'outbound_flood', frames: () => Array.from({ length: 2000 }, (_, i) => ping(i)) },
  // a head that never ends: empty CONTINUATION frames (CVE-2024-27983's family)
  { name: 'a CONTINUATION flood', reason: 'continuation_flood', frames: () => [frame(FRAME.HEADERS, 0, 1, headerBlock(GET)), ...Array.from({ length: 2000 }, () => frame(CONTINUATION, 0, 1))] },
  // empty DATA frames without END_STREAM: Node's limit on invalid frames
  { name: 'an empty-DATA flood', reason: 'protocol_error', frames: () => [requestHeaders(1, POST, false), ...Array.from({ length: 2000 }, () => frame(FRAME.DATA, 0, 1))] },
];

/** A logger whose JSON lines land in `lines`. */
function recordingLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string; reason?: string }> } {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function until(done: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('node codec: sessions nghttp2 closes for the caller are counted by reason, one warn line per caller, others served', async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({ codec: 'node', logger });
  t.teardown(() => fx.close());
  const rejected: SessionRejectReason[] = [];
  Object.assign(fx.observer, { sessionRejected: (_d: Direction, reason: SessionRejectReason) => rejected.push(reason) });
  const attacker = await fx.tlsOptions(`spiffe://${TD}/svc/compromised`);
  const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => other.destroy());

  for (const attack of ATTACKS) {
    const raw = await connectRawH2(fx.port, attacker, { ackSettings: true });
    t.teardown(() => raw.destroy());
    for (const bytes of attack.frames()) raw.write(bytes);
    await raw.closed;
    await until(() => rejected.length === ATTACKS.indexOf(attack) + 1, `${attack.name} counted`);
    t.equal(rejected.at(-1), attack.reason, `${attack.name}: the session closed, counted as ${attack.reason}`);
    t.equal((await h2Request(other, { ':method': 'GET', ':path': '/orders' })).status, 200, `another caller is served after ${attack.name}`);
  }
  const warned = lines.filter((l) => l.level === 40 && l.msg.startsWith('inbound HTTP/2 session closed'));
  t.equal(warned.length, 1, `one warn line for ${ATTACKS.length} sessions of one caller closed (${warned.length})`);
  t.equal(warned[0]?.reason, 'outbound_flood', 'the line names the reason');
});

t.test('node codec: errors that are not the caller doing are not counted', async (t) => {
  t.equal(nodeSessionFault(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104 })), undefined, 'a socket error');
  t.equal(nodeSessionFault(Object.assign(new Error('Session closed with error code 2'), { code: 'ERR_HTTP2_SESSION_ERROR' })), undefined, "the caller's own GOAWAY with an error code");
});
