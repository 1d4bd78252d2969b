// Our side of the SETTINGS exchange (RFC 9113 §6.5): the settings we announce, the timer that
// ends a connection whose peer never acknowledges them, what changes once it does, and the
// peer's first SETTINGS marking the connection connected. What the peer's SETTINGS mean for
// us (window sizes, frame size, table size) is applied where they arrive, in receive.ts.

import { DEFAULT_HEADER_TABLE_SIZE, DEFAULT_MAX_FRAME_SIZE, ErrorCode, SettingId } from './constants.js';
import type { H2Connection } from './connection.js';
import { failConnection } from './connection-close.js';
import { ConnectionFault } from './errors.js';
import type { H2Limits } from './limits.js';

/** The SETTINGS we send first, as id/value pairs; values equal to the protocol defaults are left out. */
export function localSettings(limits: H2Limits, isServer: boolean): number[] {
  const s: number[] = [];
  if (limits.headerTableSize !== DEFAULT_HEADER_TABLE_SIZE) s.push(SettingId.HEADER_TABLE_SIZE, limits.headerTableSize);
  if (!isServer) s.push(SettingId.ENABLE_PUSH, 0);
  s.push(SettingId.MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams);
  s.push(SettingId.INITIAL_WINDOW_SIZE, limits.initialWindowSize);
  if (limits.maxFrameSize !== DEFAULT_MAX_FRAME_SIZE) s.push(SettingId.MAX_FRAME_SIZE, limits.maxFrameSize);
  s.push(SettingId.MAX_HEADER_LIST_SIZE, limits.maxHeaderListSize);
  return s;
}

/** Starts the wait for the peer's SETTINGS ACK (once per connection, after our SETTINGS went out). */
export function startSettingsTimer(c: H2Connection): void {
  c.settingsTimer = setTimeout(() => failConnection(c, new ConnectionFault('settings_timeout', ErrorCode.SETTINGS_TIMEOUT, 'the peer did not acknowledge our SETTINGS')), c.limits.settingsTimeoutMs);
  c.settingsTimer.unref();
}

/** The peer's SETTINGS ACK: our settings are in force now. */
export function settingsAcked(c: H2Connection): void {
  if (c.settingsTimer) {
    clearTimeout(c.settingsTimer);
    c.settingsTimer = undefined;
    // until this ACK the peer may still have used the default (larger) table
    if (c.limits.headerTableSize < DEFAULT_HEADER_TABLE_SIZE) c.decoder.setMaxTableSize(c.limits.headerTableSize);
  }
}

/** The peer's first SETTINGS arrived. */
export function markConnected(c: H2Connection): void {
  if (c.connected) return;
  c.connected = true;
  c.emit('connect', c);
}
