// retry-timing.test.ts again, with the outbound's upstream sessions on http2.codec node
// (http2-wrapper over Node's core http2) instead of meshcar's own codec (the default, which the
// original file runs on), so the node codec keeps this file's coverage.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./retry-timing.test.js');
