// timeouts.test.ts again, with the outbound's upstream sessions on http2.codec node (http2-wrapper
// over Node's core http2) instead of meshcar's own codec (the default, which the original file runs
// on). Its streams' idle timeout is then Node's Http2Stream#setTimeout, not meshcar's deadline
// queue (src/outbound/upstream-stream.ts).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./timeouts.test.js');
