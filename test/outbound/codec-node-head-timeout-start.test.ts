// head-timeout-start.test.ts again, with the outbound's sessions on http2.codec node
// (http2-wrapper over Node's core http2; the original file runs on the default, meshcar's own
// codec): the end of the app's body, the idle timeout of a silent stream and the deadline
// passed upstream ride on Node's client streams.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./head-timeout-start.test.js');
