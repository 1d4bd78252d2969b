// grpc-status-metrics.test.ts again, with every sidecar on http2.codec node (Node's core http2;
// the original file runs on the default, meshcar's own codec): the same counts per grpc_code
// when the head, the trailers and the cuts cross the mTLS hop on Node's codec.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-status-metrics.test.js');
