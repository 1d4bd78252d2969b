// The numbers of RFC 9113 that every other file of the codec names: frame types, flags, error
// codes, settings identifiers, the client preface and the protocol's defaults and bounds.

export const FRAME_HEADER_LENGTH = 9;

export const enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export const enum Flag {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

/** RFC 9113 §7. */
export const ErrorCode = Object.freeze({
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const);
export type ErrorCodeName = keyof typeof ErrorCode;

const ERROR_NAMES: readonly string[] = Object.keys(ErrorCode);
/** The RFC name of a code; unknown codes (a peer may send any 32-bit value) as hex. */
export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

export const enum SettingId {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
  ENABLE_CONNECT_PROTOCOL = 0x8,
}

/** The client connection preface (RFC 9113 §3.4). */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Largest flow-control window and stream id: 2^31 − 1. */
export const MAX_WINDOW = 0x7fffffff;
export const MAX_STREAM_ID = 0x7fffffff;
/** The window every stream and the connection start with before any SETTINGS (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** Largest SETTINGS_MAX_FRAME_SIZE a peer may announce: 2^24 − 1. */
export const MAX_MAX_FRAME_SIZE = 16_777_215;
export const DEFAULT_HEADER_TABLE_SIZE = 4_096;

/** The peer's settings as RFC 9113 says they are until its first SETTINGS frame. */
export interface Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Infinity until announced. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Infinity until announced. */
  maxHeaderListSize: number;
  enableConnectProtocol: boolean;
}

export function defaultSettings(): Settings {
  return {
    headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
    enablePush: true,
    maxConcurrentStreams: Infinity,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
    enableConnectProtocol: false,
  };
}
