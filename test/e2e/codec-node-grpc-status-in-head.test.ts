// grpc-status-in-head.test.ts again, with every sidecar on http2.codec node (Node's core http2;
// the original file runs on the default, meshcar's own codec): the call's status is its
// trailers' when the head and the trailers cross the mTLS hop on Node's codec.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-status-in-head.test.js');
