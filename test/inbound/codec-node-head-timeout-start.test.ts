// head-timeout-start.test.ts again, with the inbound's HTTP/2 server on http2.codec node (Node's
// core http2; the original file runs on the default, meshcar's own codec).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./head-timeout-start.test.js');
