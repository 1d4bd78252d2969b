// mesh-grpc.test.ts again, with both sidecars on http2.codec node: the outbound's http2-wrapper
// sessions then talk to the inbound's Node core http2 server on the mTLS hop, across real processes
// (the original file runs on the default codec, meshcar).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./mesh-grpc.test.js');
