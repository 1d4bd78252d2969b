// The outbound's `peer` label for requests that matched no upstream: a fixed value, so a stray
// Host cannot grow the metrics. Its own module: the config refuses it as an upstream name (the
// two would share series) without loading the outbound.

export const UNKNOWN_PEER = 'unknown';
