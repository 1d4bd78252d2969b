// timeouts.test.ts again, with the outbound's sessions on http2.codec meshcar: its streams'
// idle timeout is meshcar's own (a poll of the byte counters in a shared deadline queue,
// src/outbound/upstream-stream.ts), not Node's Http2Stream#setTimeout.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./timeouts.test.js');
