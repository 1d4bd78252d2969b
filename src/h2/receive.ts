// What each received frame means (RFC 9113 §5.1 stream states, §6 frame semantics, §8 HTTP
// semantics) for one connection: DATA and its flow-control accounting, resets, PRIORITY,
// SETTINGS, PING, GOAWAY, WINDOW_UPDATE, and the per-frame limits (floods, content-length).
// What a complete header block means (streams opened, answered, trailers; concurrency and
// header rules) is in receive-headers.ts. Connection errors are thrown as ConnectionFault for
// H2Connection to turn into GOAWAY; stream errors go through streamError() (stream-registry.ts:
// RST_STREAM, counted).

import { ErrorCode, MAX_MAX_FRAME_SIZE, MAX_WINDOW, DEFAULT_MAX_FRAME_SIZE, SettingId } from './constants.js';
import type { H2Connection } from './connection.js';
import { goawayFromPeer } from './connection-close.js';
import { markConnected, settingsAcked } from './connection-settings.js';
import { ConnectionFault, protocolFault } from './errors.js';
import type { FrameHandler } from './frame-reader.js';
import type { H2Stream } from './stream.js';
import { receiveData, receiveReset } from './stream-receive-side.js';
import { forgetStream, isIdle, streamError } from './stream-registry.js';
import { endOfStream, headerBlock } from './receive-headers.js';

function calm(reason: ConstructorParameters<typeof ConnectionFault>[0], message: string): ConnectionFault {
  return new ConnectionFault(reason, ErrorCode.ENHANCE_YOUR_CALM, message);
}

export class FrameReceiver implements FrameHandler {
  private consecutiveEmptyData = 0;
  private priorityFrames = 0;
  private goaways = 0;
  private windowUpdates = 0;

  constructor(private readonly c: H2Connection) {}

  onData(streamId: number, data: Buffer, endStream: boolean, flowLength: number): void {
    const c = this.c;
    if (!c.recvWindow.receive(flowLength)) throw new ConnectionFault('flow_control_error', ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    if (data.length === 0 && !endStream) {
      if (++this.consecutiveEmptyData > c.limits.maxConsecutiveEmptyData) throw calm('empty_data_flood', 'too many empty DATA frames');
    } else this.consecutiveEmptyData = 0;
    const stream = c.streams.get(streamId);
    if (stream === undefined || stream.remoteClosed) {
      // bytes nobody will read: their connection credit goes back at once
      c.returnCredit(DISCARD, flowLength, false);
      if (stream === undefined) {
        if (isIdle(c, streamId)) throw protocolFault(`DATA on idle stream ${streamId}`);
        // closed: sent before our RST_STREAM (or our final GOAWAY) reached the peer; ignored
        // (RFC 9113 §5.1, §6.8) within what the streams we closed could still carry
        if (c.lateFrames.data(streamId, flowLength, endStream)) return;
      }
      return streamError(c, streamId, ErrorCode.STREAM_CLOSED, 'stream_closed');
    }
    if (!stream.recvWindow.receive(flowLength)) {
      c.returnCredit(DISCARD, flowLength, false);
      // the rest of the burst this frame is part of is on the wire already: ignored, not a
      // STREAM_CLOSED reset (and a MadeYouReset count) per frame (stream-registry.ts)
      c.lateFrames.overrun(streamId, c.limits.initialWindowSize);
      return streamError(c, streamId, ErrorCode.FLOW_CONTROL_ERROR, 'flow_control_error');
    }
    if (!c.isServer && !stream.headReceived) {
      c.returnCredit(DISCARD, flowLength, false);
      return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'malformed_headers');
    }
    const budget = c.receiveBudget;
    if (budget !== undefined && flowLength > 0) {
      if (!budget.fits(flowLength)) {
        c.returnCredit(DISCARD, flowLength, false);
        // ours, not the peer's doing (it stayed inside the windows we granted; the app is slow to
        // read): not counted toward MadeYouReset, or a caller's connection, healthy streams and
        // all, went once maxResetsPer10s of them came (a review); but in a looser budget of
        // their own, or a caller could open streams into a full budget without end (a re-review)
        streamError(c, streamId, ErrorCode.ENHANCE_YOUR_CALM, 'buffer_limit', false);
        const abuse = c.resetBudget.bufferLimitReset(performance.now());
        if (abuse) throw new ConnectionFault(abuse, ErrorCode.ENHANCE_YOUR_CALM, 'the peer keeps opening streams while its bodies fill the budget');
        return;
      }
      // given back with the stream's credit (connection.ts: returnCredit) or at the connection's end
      budget.held += flowLength;
      c.budgetHeld += flowLength;
    }
    const padding = flowLength - data.length;
    if (padding > 0) c.returnCredit(stream, padding);
    if (stream.contentLength >= 0 && stream.dataReceived + data.length > stream.contentLength) {
      c.returnCredit(DISCARD, data.length);
      return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'content_length_mismatch');
    }
    receiveData(stream, data);
    if (endStream) endOfStream(c, stream);
  }

  onHeaders(streamId: number, fragment: Buffer, endStream: boolean, endHeaders: boolean, dependency: number): void {
    const block = this.c.blocks.begin(streamId, fragment, endStream, endHeaders, dependency === streamId);
    if (block !== null) headerBlock(this.c, block);
  }

  onContinuation(_streamId: number, fragment: Buffer, endHeaders: boolean): void {
    const block = this.c.blocks.continue(fragment, endHeaders);
    if (block !== null) headerBlock(this.c, block);
  }

  onPriority(streamId: number, dependency: number): void {
    const c = this.c;
    // per stream opened on either side: a server counts the streams its peer opened, a client
    // (whose peer opens none) the streams it opened itself
    const streamsOpened = c.streamsOpenedByPeer + (c.nextStreamId - (c.isServer ? 2 : 1)) / 2;
    if (++this.priorityFrames > c.limits.maxPriorityPerStream * (streamsOpened + 1)) throw calm('priority_flood', 'too many PRIORITY frames');
    // parsed and otherwise ignored (RFC 9113 §5.3.2); a self-dependency is still an error
    if (dependency === streamId) {
      // a stream error by RFC 9113 §5.3.1, but an idle stream must not get RST_STREAM (§5.1):
      // a connection error then (§5.4 lets any stream error be one), as nghttp2 made
      // every self-dependent PRIORITY one until it dropped RFC 7540 priorities
      if (isIdle(c, streamId)) throw protocolFault(`PRIORITY on idle stream ${streamId} depends on itself`);
      streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'priority_self_dependency');
    }
  }

  onRstStream(streamId: number, code: number): void {
    const c = this.c;
    const stream = c.streams.get(streamId);
    if (stream === undefined) {
      if (isIdle(c, streamId)) throw protocolFault(`RST_STREAM on idle stream ${streamId}`);
      return;
    }
    forgetStream(c, stream);
    // rapid reset (CVE-2023-44487): a server counts requests reset before they were answered,
    // within a second of opening (limits.ts: peerResetKind); a cancelled answered stream is an ordinary end
    // the process's running time: a wall clock stepped back made every age negative (premature)
    const now = performance.now();
    // one we had answered in full is an ordinary end, as the node codec counts it (reset-guard.ts)
    let abuse: ReturnType<typeof c.resetBudget.peerReset>;
    if (c.isServer) {
      if (stream.localClosed) c.resetBudget.completedStream(now);
      else abuse = c.resetBudget.peerReset(stream.headersSent, now - stream.openedMs, now, stream.callerDeadlineMs);
    }
    // REFUSED_STREAM: the peer did not process it, so it is safe to retry elsewhere
    receiveReset(stream, code, code === ErrorCode.REFUSED_STREAM ? 'refused' : 'reset_by_peer');
    if (abuse) throw calm(abuse, 'the peer resets streams faster than allowed');
  }

  onSettings(ack: boolean, params: Buffer): void {
    const c = this.c;
    if (ack) return settingsAcked(c);
    if (c.settingsBudget.hit(performance.now())) throw calm('settings_flood', 'too many SETTINGS frames');
    // a 16 KiB frame holds 2,730 entries: capped as nghttp2 caps them since CVE-2020-11080
    if (params.length / 6 > c.limits.maxSettingsEntries) throw calm('settings_flood', `a SETTINGS frame of ${params.length / 6} entries`);
    const s = c.remoteSettings;
    // INITIAL_WINDOW_SIZE reaches the open streams once per frame (below), not once per entry
    const initialBefore = s.initialWindowSize;
    let initialHighest = initialBefore;
    for (let i = 0; i < params.length; i += 6) {
      const id = params.readUInt16BE(i);
      const value = params.readUInt32BE(i + 2);
      switch (id) {
        case SettingId.HEADER_TABLE_SIZE:
          s.headerTableSize = value;
          c.encoder.setPeerMaxTableSize(value);
          break;
        case SettingId.ENABLE_PUSH:
          if (value > 1 || (value === 1 && !c.isServer)) throw protocolFault(`SETTINGS_ENABLE_PUSH ${value}`);
          s.enablePush = value === 1;
          break;
        case SettingId.MAX_CONCURRENT_STREAMS:
          s.maxConcurrentStreams = value;
          break;
        case SettingId.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionFault('flow_control_error', ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
          s.initialWindowSize = value;
          if (value > initialHighest) initialHighest = value;
          break;
        }
        case SettingId.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) throw protocolFault(`SETTINGS_MAX_FRAME_SIZE ${value}`);
          s.maxFrameSize = value;
          break;
        case SettingId.MAX_HEADER_LIST_SIZE:
          s.maxHeaderListSize = value;
          break;
        case SettingId.ENABLE_CONNECT_PROTOCOL:
          if (value > 1) throw protocolFault(`SETTINGS_ENABLE_CONNECT_PROTOCOL ${value}`);
          s.enableConnectProtocol = value === 1;
          break;
        // unknown settings are ignored (RFC 9113 §6.5.2)
      }
    }
    const windowChanged = initialHighest !== initialBefore || s.initialWindowSize !== initialBefore;
    if (windowChanged) this.initialWindowChanged(initialBefore, initialHighest, s.initialWindowSize);
    // the ACK goes out before any frame that relies on the new values (RFC 9113 §6.5.3): the
    // peer applies its larger window or frame size only once it has it
    c.writer.settingsAck();
    if (windowChanged && s.initialWindowSize > initialBefore) for (const stream of c.streams.values()) c.unblock(stream);
    markConnected(c);
    c.emit('remoteSettings', s);
    c.sendPending();
  }

  /**
   * The net change of SETTINGS_INITIAL_WINDOW_SIZE over one frame, applied to each open stream
   * once. Entries apply in order (RFC 9113 §6.9.2), so a window that the highest value set on
   * the way would take past 2^31 - 1 is a FLOW_CONTROL_ERROR even if a later entry lowers it.
   * Nothing is sent here: streams it unblocks resume after our SETTINGS ACK (onSettings).
   */
  private initialWindowChanged(before: number, highest: number, after: number): void {
    const c = this.c;
    for (const stream of c.streams.values()) {
      if (!stream.sendWindow.adjust(highest - before)) throw new ConnectionFault('flow_control_error', ErrorCode.FLOW_CONTROL_ERROR, 'a stream window beyond 2^31 − 1');
      stream.sendWindow.adjust(after - highest); // zero or less: cannot overflow
    }
  }

  onPushPromise(): void {
    // we announce SETTINGS_ENABLE_PUSH 0 (client) and a client never pushes (server)
    throw protocolFault('PUSH_PROMISE, though push is disabled', 'push_refused');
  }

  onPing(ack: boolean, payload: Buffer): void {
    const c = this.c;
    if (ack) return c.pingAcked(payload);
    if (c.pingBudget.hit(performance.now())) throw calm('ping_flood', 'too many PINGs');
    c.writer.ping(payload, true);
  }

  onGoaway(lastStreamId: number, code: number, debug: Buffer): void {
    if (++this.goaways > this.c.limits.maxGoaways) throw calm('goaway_flood', 'too many GOAWAY frames');
    goawayFromPeer(this.c, lastStreamId, code, debug);
  }

  onWindowUpdate(streamId: number, increment: number): void {
    const c = this.c;
    if (++this.windowUpdates > c.limits.maxWindowUpdatesPerDataFrame * (c.dataFramesSent + 100)) throw calm('window_update_flood', 'too many WINDOW_UPDATE frames');
    if (streamId === 0) {
      if (increment === 0) throw protocolFault('WINDOW_UPDATE of 0 on the connection');
      if (!c.sendWindow.grow(increment)) throw new ConnectionFault('flow_control_error', ErrorCode.FLOW_CONTROL_ERROR, 'the connection window beyond 2^31 − 1');
      c.sendPending();
      return;
    }
    const stream = c.streams.get(streamId);
    if (stream === undefined) {
      if (isIdle(c, streamId)) throw protocolFault(`WINDOW_UPDATE on idle stream ${streamId}`);
      return; // closed: may cross our END_STREAM or RST_STREAM
    }
    if (increment === 0) return streamError(c, streamId, ErrorCode.PROTOCOL_ERROR, 'window_update_zero');
    if (!stream.sendWindow.grow(increment)) return streamError(c, streamId, ErrorCode.FLOW_CONTROL_ERROR, 'flow_control_error');
    c.unblock(stream);
  }

  onStreamFrameError(streamId: number, code: number): void {
    // a PRIORITY of the wrong length: a stream error (RFC 9113 §6.3), but never RST_STREAM on an
    // idle stream (§5.1): there a connection error, as nghttp2 and Go make it on any stream
    if (isIdle(this.c, streamId)) throw new ConnectionFault('frame_size_error', code, `PRIORITY of the wrong length on idle stream ${streamId}`);
    streamError(this.c, streamId, code, 'frame_size_error');
  }
}

/** Credit for bytes no stream will hold (closed streams, errors): connection level only. */
const DISCARD = { remoteClosed: true, id: 0 } as H2Stream;
