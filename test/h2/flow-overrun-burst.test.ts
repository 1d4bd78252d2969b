// A peer that overruns a stream's window with a burst of DATA frames gets one RST_STREAM
// (FLOW_CONTROL_ERROR), counted once: the rest of the burst, already on the wire when the reset
// went out, is ignored (RFC 9113 §5.1, as nghttp2 and Go ignore it), up to one stream window
// more on that stream (stream-registry.ts: LateFrameAllowance.overrun), the connection window
// still charged and given back. It drew a STREAM_CLOSED reset per late frame, each counted
// toward MadeYouReset. Past that allowance, DATA on the stream is an error again, and a peer
// that keeps at it meets the MadeYouReset GOAWAY.

import t from 'tap';
import { ErrorCode } from '../../src/h2/constants.js';
import { DEFAULT_LIMITS } from '../../src/h2/limits.js';
import { startOurServer, tlsPair, waitFor } from './fixtures/h2-helpers.js';
import { FRAME, connectRawH2, describe, errorCodeOf, frame, pingRoundTrip, requestHeaders, type Frame } from '../helpers/raw-h2.js';

const WINDOW = DEFAULT_LIMITS.initialWindowSize;
const FRAME_BYTES = 16_384;
const upload: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'x']];
const count = (frames: readonly Frame[], type: number, code?: number): number => frames.filter((f) => f.type === type && (code === undefined || errorCodeOf(f) === code)).length;
const dataFrames = (streamId: number, n: number, bytes = FRAME_BYTES): Buffer => Buffer.concat(Array.from({ length: n }, () => frame(FRAME.DATA, 0, streamId, Buffer.alloc(bytes, 0x78))));

t.test('a burst past a stream window: one FLOW_CONTROL_ERROR reset, the rest of the burst ignored; beyond a window more, errors again', async (t) => {
  // the stream's body is never read: the window is all the peer may send
  const server = await startOurServer((stream) => stream.on('error', () => {}), { tls: true });
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());

  // 20 frames of 16 KiB in one write: the 17th overruns the 256 KiB window, 3 follow it
  const burst = WINDOW / FRAME_BYTES + 4;
  raw.write(Buffer.concat([requestHeaders(1, upload, false), dataFrames(1, burst)]));
  await pingRoundTrip(raw, 1);
  t.equal(count(raw.frames, FRAME.RST_STREAM), 1, `one RST_STREAM for the burst (${describe(raw.frames.filter((f) => f.type === FRAME.RST_STREAM))})`);
  t.equal(count(raw.frames, FRAME.RST_STREAM, ErrorCode.FLOW_CONTROL_ERROR), 1, 'FLOW_CONTROL_ERROR');
  t.same(server.observer.streamErrors, [{ reason: 'flow_control_error', code: ErrorCode.FLOW_CONTROL_ERROR }], 'counted once, as flow_control_error');
  t.equal(count(raw.frames, FRAME.GOAWAY), 0, 'no GOAWAY');

  // the connection still carries a request: its window was given back for the ignored bytes
  raw.write(requestHeaders(3, [[':method', 'GET'], [':scheme', 'https'], [':path', '/after'], [':authority', 'x']]));
  await waitFor(() => server.connections[0]?.activeStreams === 1, 'stream 3 open');

  // up to a window past the overrun (of which 3 frames came already) is still ignored ...
  raw.write(dataFrames(1, WINDOW / FRAME_BYTES - 3));
  await pingRoundTrip(raw, 2);
  t.equal(count(raw.frames, FRAME.RST_STREAM), 1, 'a window past the overrun: still ignored');
  // ... beyond it, DATA on the closed stream is an error again, and a flood of it ends the connection
  raw.write(dataFrames(1, 2));
  await pingRoundTrip(raw, 3);
  t.equal(count(raw.frames, FRAME.RST_STREAM, ErrorCode.STREAM_CLOSED), 2, 'beyond it: STREAM_CLOSED, one per frame');
  raw.write(dataFrames(1, 300, 1));
  const goaway = await raw.waitFor((f) => f.type === FRAME.GOAWAY, 'GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.ENHANCE_YOUR_CALM, 'a peer that keeps sending on it: GOAWAY(ENHANCE_YOUR_CALM)');
  await waitFor(() => server.observer.closed.length > 0, 'the close counted');
  t.equal(server.observer.closed[0]?.reason, 'made_you_reset');
});
